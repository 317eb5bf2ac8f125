"""``clinic-edge report SESSION_ID``: the session report as one self-contained HTML file, and as PDF
when Chromium is installed (headless ``--print-to-pdf``)."""

from __future__ import annotations

import html
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from clinic_signals.fusion import Fuser, LateFusion, WindowFusion
from edge import __version__
from edge.channels.load import fusion_head
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.inference.pack import trust_pack
from edge.report import plots
from edge.report.analysis import SessionFigures, clock, figures, summary_sentences
from edge.report.data import ReportError, SessionData, load_session
from edge.store import Store
from edge.store.db import remove_reports

logger = logging.getLogger(__name__)

LIMITS = (
    "This report describes expressions, voice and words as measured by models; it does not diagnose, "
    "and it does not measure what the client feels. Use it alongside clinical judgement, never instead of it.",
    "The face model was trained on posed and web photographs (FER2013): it recognises seven expressions "
    "(no 'calm') and is less reliable for faces turned away, poorly lit, small, or from groups under-represented "
    "in its data.",
    "The voice's arousal and valence are interpretable acoustic cues against the client's own baseline in this "
    "session; valence from the voice alone is weak evidence. A trained speech model is used only when the model "
    "pack carries one.",
    "Text emotion is zero-shot similarity to prototype sentences: it misses negation, sarcasm and context, and "
    "depends on the transcript, which can be wrong (especially for accented or quiet speech).",
    "The camera pulse is a research measurement, easily disturbed by movement and light; it is not a medical reading.",
    "Disparity means the channels pointed in opposite directions for a while; it is a prompt for attention, "
    "not a finding.",
)
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# The report's look, in the HTML file and on the review page (served there as a style sheet).
REPORT_CSS = """body { font-family: "DejaVu Sans", sans-serif; max-width: 60rem; margin: 2rem auto; color: #212121; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #e0e0e0; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #e0e0e0; padding: 0.25rem 0.6rem; }
.muted { color: #757575; } .notice { background: #fff8e1; border-left: 4px solid #ef6c00; padding: 0.6rem 1rem; }
img { max-width: 100%; } .row { display: flex; gap: 1rem; flex-wrap: wrap; align-items: flex-start; }
@media print { h2 { break-after: avoid; } img { break-inside: avoid; } }
"""
PDF_TIMEOUT_S = 60
REPORTS_DIR = "reports"


def fusion_for(config: AppConfig, registry: ChannelRegistry) -> tuple[WindowFusion, Fuser]:
    """The fusion the room uses (the pack's head when it has one), for the permutation importance.
    The pack is authenticated here: a report is often its process's first use of it."""
    pack = config.models.pack
    head = None
    if pack and config.fusion.method == "auto":
        trust_pack(config.models)
        head = fusion_head(config, pack, registry)
    fuser: Fuser = (
        head
        if head is not None
        else LateFusion(config.fusion.weights.model_dump(), config.fusion.channel_temperatures.model_dump())
    )
    return WindowFusion(fuser, config.fusion), fuser


def session_figures(session: SessionData, config: AppConfig, registry: ChannelRegistry) -> tuple[SessionFigures, str]:
    """The numbers behind a report of ``session`` and the fusion method they were computed with."""
    fusion, fuser = fusion_for(config, registry)
    try:
        return figures(session, fusion, registry), fuser.method
    finally:
        close = getattr(fuser, "engine", None)
        if close is not None:
            close.close()


def _explained(session: SessionData, channel: str, key: str) -> list[Any]:
    """One part of the explained windows' explanations (where the channel explained the window)."""
    return [v for w in session.windows if (v := w.explained(channel, key))]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _moments(session: SessionData) -> str:
    if not session.events:
        return "<p>None: face, voice and words never disagreed for long in this session.</p>"
    rows = []
    for e in session.events:
        said = [u for u in session.transcript if u.start_s < e.end_s and u.end_s > e.start_s]
        words = " / ".join(html.escape(f"{u.text} [{u.label}]") for u in said) if said else "&ndash;"
        rows.append(
            [
                f"{clock(e.start_s)}&ndash;{clock(e.end_s)}",
                f"{e.end_s - e.start_s:.0f} s",
                f"the {html.escape(e.channels[0])} and the {html.escape(e.channels[1])}",
                f"{e.peak:.2f}",
                words,
            ]
        )
    note = "" if session.transcript else "<p class='muted'>Transcripts are not stored in this room.</p>"
    return _table(["when", "for how long", "which disagreed", "how strongly (0 to 1)", "what was said"], rows) + note


def _words_section(session: SessionData) -> str:
    explained = _explained(session, "words", "words")
    if not explained:
        return "<p class='muted'>No word importances (the words channel is off or transcripts are not stored).</p>"
    weights: dict[str, list[float]] = {}
    for words in explained:
        for word, value in words:
            weights.setdefault(str(word).lower().strip(".,!?"), []).append(float(value))
    top = sorted(((w, float(np.mean(v))) for w, v in weights.items()), key=lambda kv: -abs(kv[1]))[:12]
    return _table(["word", "mean importance"], [[html.escape(w), f"{v:+.3f}"] for w, v in top])


def report_body(
    session: SessionData, config: AppConfig, registry: ChannelRegistry | None = None, *, technical_open: bool = True
) -> str:
    """The report of ``session`` (its sections, without the page around them); ``registry`` (the
    product's channels by default) says which channels are covered, fused and shown. A therapist's
    summary and the moments come first; the models' internals are under "Technical details" (open
    in a printed report, folded on the review page: ``technical_open``)."""
    registry = registry if registry is not None else default_registry()
    f, method = session_figures(session, config, registry)
    grids = _explained(session, "face", "map")
    mean_grid = np.mean(np.asarray(grids, dtype=np.float64), axis=0).tolist() if grids else None
    voice = _explained(session, "voice", "segments")
    summary = "".join(f"<li>{html.escape(s)}</li>" for s in summary_sentences(session, f))
    coverage_rows = [
        [html.escape(c), f"{100 * v.present:.0f} %", f"{100 * v.good:.0f} %"] for c, v in f.coverage.items()
    ]
    voice_note = "<p class='muted'>No voice explanations in this session.</p>"
    if voice:
        length = min(len(v) for v in voice)
        mean = np.mean(np.asarray([v[:length] for v in voice], dtype=np.float64), axis=0)
        voice_note = (
            f"<p>Voice: importance of each half-second of a window, averaged over {len(voice)} explained "
            f"windows: {', '.join(f'{v:.2f}' for v in mean)}.</p>"
        )
    limits = "".join(f"<li>{html.escape(s)}</li>" for s in LIMITS)
    crashed = (
        "<p class='notice' id='ended-by-crash'>This session did not end normally (the appliance stopped or "
        "crashed); it is shown up to its last stored window, and what was being analysed then is missing.</p>"
        if session.ended_by == "crash"
        else ""
    )
    voters = tuple(c.name for c in registry.voters)
    title = report_title(session)
    folded = " open" if technical_open else ""
    return f"""<h1>{html.escape(title)}</h1>
<p class="notice" id="not-a-diagnosis"><b>Not a diagnosis.</b> {html.escape(LIMITS[0])}</p>
{crashed}<h2 id="summary">Summary</h2><ul>{summary}</ul>
<h2 id="disparity">Moments when face, voice and words disagreed</h2>{_moments(session)}
<h2 id="timeline">Timeline</h2>{plots_timeline(session, voters)}
<h2 id="limits">What these results cannot tell</h2><ul>{limits}</ul>
<details id="technical"{folded}><summary>Technical details (how the models reached these results)</summary>
<p class="muted">Room {html.escape(session.site)}/{html.escape(session.room)} &middot; device
{html.escape(session.device_id)} &middot; session {html.escape(session.id)} &middot; consent
{html.escape(session.consent_method or "not recorded")} &middot; backend {html.escape(session.backend or "?")}
&middot; fusion {html.escape(method)} &middot; clinic-edge {__version__}</p>
<h2 id="contributions">Contributions</h2>
<p>Shapley value: how much each channel moved a window's result above chance, averaged over the windows that
used it. Permutation importance: the share of windows whose result changes when that channel's results are
shuffled across the session.</p>
<div class="row">{_img(plots.contributions(f, voters), "contributions per channel")}</div>
<h2 id="explanations">Explanations</h2>
<p>{f.explained} window(s) were explained (setting
<code>explain.when = "{html.escape(config.explain.when)}"</code>).</p>
<div class="row">{_img(plots.face_map(mean_grid, f.face_regions), "face regions over a neutral outline")}
<div>{voice_note}<h3>Words</h3>{_words_section(session)}</div></div>
<h2 id="coverage">Coverage</h2>
<div class="row">{_img(plots.coverage(f), "coverage per channel")}
{_table(["channel", "present", "good quality"], coverage_rows)}</div>
</details>
"""


def report_title(session: SessionData) -> str:
    return f"Session report {session.started_at[:16].replace('T', ' ')} UTC"


def render_html(session: SessionData, config: AppConfig, registry: ChannelRegistry | None = None) -> str:
    """The report of ``session`` as one self-contained HTML file."""
    body = report_body(session, config, registry)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report_title(session))}</title>
<style>
{REPORT_CSS}@page {{ size: {config.review.paper}; margin: 15mm; }}
</style></head><body>
{body}</body></html>
"""


def plots_timeline(session: SessionData, voters: tuple[str, ...]) -> str:
    if not session.windows:
        return "<p class='muted'>The session has no windows.</p>"
    return _img(plots.timeline(session, voters), "emotion timeline per channel")


def write_pdf(html_path: Path, pdf_path: Path) -> Path | None:
    """Print the report with headless Chromium when it is installed; None otherwise."""
    binary = next((b for b in (shutil.which(n) for n in CHROMIUM) if b), None)
    if binary is None:
        logger.info("no Chromium found: the report is HTML only (install chromium for a PDF)")
        return None
    with tempfile.TemporaryDirectory(prefix="clinic-report-") as profile:
        # Chromium's sandbox cannot run as root; anywhere else (the service's user, a technician) it stays on.
        sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
        cmd = [
            binary,
            "--headless",
            *sandbox,
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=PDF_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            logger.warning("Chromium could not print the PDF (%s); the HTML report stands", exc)
            pdf_path.unlink(missing_ok=True)  # whatever it wrote before failing
            return None
    if not pdf_path.is_file():
        return None
    pdf_path.chmod(0o600)
    return pdf_path


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
