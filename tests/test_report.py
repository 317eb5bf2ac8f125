"""The session report: a real session on the demo clip (every channel on, every window explained),
then `clinic-edge report`, rendered in headless Chromium and printed to PDF by it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from edge.cli import main
from edge.config import load_config
from edge.errors import EdgeError
from edge.report.data import explanation, load_session
from edge.runtime import Appliance
from tests.conftest import CONSENT, EVERYTHING_KEPT, ROOT, headless_chromium, write_config

ARTIFACTS = ROOT / "build" / "test-artifacts" / "report"
SECTIONS = (
    "not-a-diagnosis",
    "summary",
    "timeline",
    "disparity",
    "contributions",
    "explanations",
    "coverage",
    "limits",
)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, default_pack: Path, demo_clip: Path) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("report")
    config_path = write_config(
        folder / "room.toml",
        face_model=folder / "unused.onnx",
        state_dir=folder / "state",
        mqtt_port=None,
        pack=default_pack,
        extra=EVERYTHING_KEPT,
    )
    report = Appliance(load_config(config_path), demo_clip.as_uri()).run(consent=CONSENT)
    return config_path, report.session_id


def test_report_renders_with_every_section_and_prints_to_pdf(
    session: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, session_id = session
    assert main(["report", session_id, "--config", str(config_path), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    page = tmp_path / f"report-{session_id}.html"
    pdf = tmp_path / f"report-{session_id}.pdf"
    assert f"report: {page}" in printed and f"report: {pdf}" in printed
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # self-contained: nothing is fetched

    stored = load_session(load_config(config_path).storage.state_dir / "clinic-edge.db", session_id)
    assert stored.events, "the session's disagreement is in the report"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium("1100,3400") as browser:
        browser.get(page.as_uri())
        for section in SECTIONS:
            assert browser.find_element(By.ID, section).is_displayed(), section
        images = browser.find_elements(By.TAG_NAME, "img")
        assert len(images) == 4  # timeline, contributions, face outline, coverage: drawings, no photographs
        assert all(browser.execute_script("return arguments[0].naturalWidth", i) > 100 for i in images)
        summary = browser.find_element(By.ID, "summary").find_element(By.XPATH, "following-sibling::ul").text
        assert re.search(r"The session lasted 00:1\d", summary)
        assert "The most frequent result was happy" in summary
        assert f"disagreed for a sustained time {len(stored.events)} time(s)" in summary
        moments = browser.find_element(By.ID, "disparity").find_element(By.XPATH, "following-sibling::table").text
        assert "sister" in moments  # the stored transcript shows what was said at that moment
        limits = browser.find_element(By.ID, "limits").find_element(By.XPATH, "following-sibling::ul").text
        assert "does not diagnose" in limits
        browser.save_screenshot(str(ARTIFACTS / "report.png"))


def test_unknown_session_is_named_with_the_recent_ones(session: tuple[Path, str], tmp_path: Path) -> None:
    config_path, session_id = session
    config = load_config(config_path)
    with pytest.raises(EdgeError, match=rf"no session nope .*recent sessions: {session_id}"):
        load_session(config.storage.state_dir / "clinic-edge.db", "nope")
    assert main(["report", "nope", "--config", str(config_path), "--out", str(tmp_path)]) != 0
    assert not list(tmp_path.iterdir())


@pytest.mark.unit
@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        pytest.param(None, None, id="not explained"),
        pytest.param(
            {"reason": "every", "channels": {"face": {"label": "happy"}}, "cost_ms": {}},
            {"reason": "every", "channels": {"face": {"label": "happy"}}, "cost_ms": {}},
            id="per channel",
        ),
        pytest.param(
            {
                "reason": "disagreement",
                "face_map": [[0.1]],
                "face_regions": {"mouth": 1.0},
                "face_label": "sad",
                "voice_segments": None,
                "words": [["fine", 0.2]],
                "cost_ms": {"explain_face_ms": 3.0},
            },
            {
                "reason": "disagreement",
                "channels": {
                    "face": {"map": [[0.1]], "regions": {"mouth": 1.0}, "label": "sad"},
                    "words": {"words": [["fine", 0.2]]},
                },
                "cost_ms": {"explain_face_ms": 3.0},
            },
            id="flat row of an older version",
        ),
    ],
)
def test_stored_explanations_read_back_per_channel(stored: dict[str, Any] | None, expected: object) -> None:
    assert explanation(stored) == expected


def test_a_session_a_crash_ended_says_so(session: tuple[Path, str]) -> None:
    import dataclasses

    from edge.report.render import render_html

    config_path, session_id = session
    config = load_config(config_path)
    stored = load_session(config.storage.state_dir / "clinic-edge.db", session_id)
    assert stored.ended_by == "stop" and "ended-by-crash" not in render_html(stored, config)
    crashed = dataclasses.replace(stored, ended_by="crash")
    assert "ended-by-crash" in render_html(crashed, config)


def test_reports_are_owner_only_listed_and_purged_with_their_session(
    session: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import stat
    from datetime import datetime, timezone

    from edge.report.files import write_report
    from edge.store import Store

    config_path, session_id = session
    assert main(["report", "--list", "--config", str(config_path)]) == 0
    assert session_id in capsys.readouterr().out  # the report the first test wrote is on record
    config = load_config(config_path)
    state = tmp_path / "state"  # a copy: purging here leaves the module's session alone
    shutil.copytree(config.storage.state_dir, state, ignore=shutil.ignore_patterns("*.sock"))
    config = config.model_copy(update={"storage": config.storage.model_copy(update={"state_dir": state})})
    old_umask = os.umask(0o022)  # a permissive umask: the files are private all the same
    try:
        inside = write_report(config, session_id, pdf=False)
        outside = write_report(config, session_id, tmp_path / "elsewhere", pdf=False)
    finally:
        os.umask(old_umask)
    assert inside == [state / "reports" / f"report-{session_id}.html"]
    for path in (*inside, *outside):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((state / "reports").stat().st_mode) == 0o700
    store = Store(state / config.storage.database)
    try:
        on_record = {p for s, p, _ in store.reports() if s == session_id}
        assert {str(p.resolve()) for p in (*inside, *outside)} <= on_record
        counts = store.purge(datetime(2100, 1, 1, tzinfo=timezone.utc))
    finally:
        store.close()
    assert counts["sessions"] >= 1 and counts["reports"] >= 2
    assert not any(p.exists() for p in (*inside, *outside))


def _state_copy(session: tuple[Path, str], tmp_path: Path) -> tuple[Any, str]:
    """The module's room with its state folder copied (erasing here leaves the module's session alone)."""
    import shutil

    config_path, session_id = session
    config = load_config(config_path)
    state = tmp_path / "state"
    shutil.copytree(config.storage.state_dir, state, ignore=shutil.ignore_patterns("*.sock", "reports"))
    return config.model_copy(update={"storage": config.storage.model_copy(update={"state_dir": state})}), session_id


def _left(config: Any) -> list[Path]:
    folder = config.storage.state_dir / "reports"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_session_erased_while_its_pdf_prints_leaves_no_file(
    session: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The erasure arrives while Chromium prints (a hook in the printer): the files are deleted and the
    report refused; before, the PDF stayed behind, recorded nowhere, and retention never removed it."""
    from edge.report import files
    from edge.report.data import ReportError
    from edge.report.files import write_report
    from edge.store import Store

    config, session_id = _state_copy(session, tmp_path)
    real = files.write_pdf

    def erased_meanwhile(html: Path, pdf: Path) -> Path | None:
        store = Store(config.storage.state_dir / config.storage.database)
        try:
            store.erase(session_id)
        finally:
            store.close()
        return real(html, pdf)

    monkeypatch.setattr(files, "write_pdf", erased_meanwhile)
    with pytest.raises(ReportError, match="erased while its report was written"):
        write_report(config, session_id)
    assert _left(config) == []


def test_a_printer_that_fails_after_writing_leaves_nothing_unrecorded(
    session: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Chromium that writes the PDF and then exits with an error: the PDF is deleted, the HTML stands
    and is on record."""
    from edge.report.files import write_report
    from edge.store import Store

    config, session_id = _state_copy(session, tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    script = fake / "chromium"
    script.write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --print-to-pdf=*) echo "%PDF-1.4 partial" > "${a#*=}";; esac; '
        "done\nexit 1\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    written = write_report(config, session_id)
    assert [p.suffix for p in written] == [".html"]
    assert _left(config) == written
    store = Store(config.storage.state_dir / config.storage.database)
    try:
        here = str(config.storage.state_dir.resolve())
        on_record = {p for s, p, _ in store.reports() if s == session_id and p.startswith(here)}
        assert on_record == {str(written[0].resolve())}
    finally:
        store.close()


def test_an_erasure_cut_short_after_its_commit_is_finished_at_the_next_start(
    session: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between the erasure's commit and deleting the files (a hook raises there): the
    next start of the store deletes them."""
    from edge.report.files import write_report
    from edge.store import Store, retention

    config, session_id = _state_copy(session, tmp_path)
    written = write_report(config, session_id, pdf=False)
    path = config.storage.state_dir / config.storage.database

    class Killed(BaseException):
        pass

    def die(_paths: object) -> int:
        raise Killed

    store = Store(path)
    monkeypatch.setattr(retention, "remove_reports", die)
    with pytest.raises(Killed):
        store.erase(session_id)
    store.close()
    monkeypatch.undo()
    assert _left(config) == written  # the session is gone, its file is not (yet)
    Store(path).close()  # the appliance (or the review page) starts again
    assert _left(config) == []


def test_session_show_reads_the_timeline_through_the_reports_api(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``clinic-edge session show latest`` (the demo's view) prints every stored window and the kept
    transcript, read by load_session like the report; ``report latest`` names the same session."""
    from edge.report.data import load_session

    config_path, session_id = session
    config = load_config(config_path)
    stored = load_session(config.storage.state_dir / config.storage.database, session_id)
    assert main(["session", "show", "latest", "--config", str(config_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"session {session_id} ")
    rows = [line for line in lines if line.strip()[:1].isdigit() and " s  " in line and "[" not in line]
    assert len(rows) == len(stored.windows) == 13
    assert [r.split()[3] for r in rows] == [w.label or "-" for w in stored.windows]
    assert any(u.text in "\n".join(lines) for u in stored.transcript), "the kept transcript is shown"
    assert main(["report", "latest", "--config", str(config_path), "--no-pdf", "--out", str(config_path.parent)]) == 0
    assert f"report-{session_id}.html" in capsys.readouterr().out
