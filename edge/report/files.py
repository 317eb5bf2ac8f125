"""``clinic-edge report SESSION_ID``: the report's files (HTML, and PDF when Chromium is installed),
owner-only, recorded with the session so that retention and erasure delete them."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge.channels.registry import ChannelRegistry
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.report.data import ReportError, load_session
from edge.report.pdf import write_pdf
from edge.report.render import render_html
from edge.store import Store
from edge.store.retention import remove_reports

logger = logging.getLogger(__name__)

REPORTS_DIR = "reports"


def reports_dir(config: AppConfig) -> Path:
    """Where reports go by default: ``<state_dir>/reports`` (0700), beside the data they show."""
    return config.storage.state_dir / REPORTS_DIR


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (0600), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_report(
    config: AppConfig,
    session_id: str,
    out_dir: Path | None = None,
    *,
    pdf: bool = True,
    registry: ChannelRegistry | None = None,
) -> list[Path]:
    """Write ``report-<session>.html`` (and ``.pdf``), owner-only, into ``out_dir`` (the state
    folder's ``reports`` by default); the files are recorded with the session and deleted with it
    by retention. Returns the files written.

    Raises:
        ReportError: unknown session or unreadable database.
    """
    db_path = config.storage.state_dir / config.storage.database
    session = load_session(db_path, session_id, registry)
    out_dir = out_dir if out_dir is not None else reports_dir(config)
    html_path = out_dir / f"report-{session.id}.html"
    pdf_path = html_path.with_suffix(".pdf")
    store = Store(db_path, migrate_schema=False)
    try:
        # On record before they exist: an erasure meanwhile, or a crash, never leaves one unknown.
        for path in (html_path, *((pdf_path,) if pdf else ())):
            store.add_report(session.id, path)
        try:
            out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(html_path, render_html(session, config, registry))
        except OSError as exc:
            store.drop_report(html_path)
            raise ReportError(f"cannot write {html_path}: {exc}") from None
        written = [html_path]
        if pdf:
            printed = write_pdf(html_path, pdf_path)
            if printed is None:
                store.drop_report(pdf_path)
            else:
                written.append(printed)
        if not all(store.has_report(path) for path in written):
            remove_reports(written)  # the session was erased while its report was written
            raise ReportError(f"session {session.id} was erased while its report was written; nothing is kept")
    except StoreError as exc:
        raise ReportError(f"no report for session {session.id}: {exc}") from None
    finally:
        store.close()
    return written
