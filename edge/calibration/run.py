"""``clinic-edge calibrate``: measure the room, print the checks, write the room profile."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.live import Live
from rich.table import Table

from edge.calibration.checks import judge, verdict
from edge.calibration.intrinsics import solve
from edge.calibration.measure import Measurements, measure_source
from edge.calibration.report import write_report
from edge.capture.source import parse_source
from edge.config.load import load_config
from edge.config.profile import FULL_FRAME, CheckResult, Region, RoomProfile, profile_path, save_profile
from edge.errors import ConfigError
from edge.vision.detect import FaceDetector


def _board(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--checkerboard must be COLSxROWS of inner corners, e.g. 9x6, got {text!r}") from None
    if cols < 3 or rows < 3:
        raise ConfigError(f"--checkerboard needs at least 3x3 inner corners, got {text!r}")
    return cols, rows


STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim"}


class LiveView:
    """The technician's live table: checks re-judged twice a second while the source runs."""

    def __init__(self, source: str, duration_s: float) -> None:
        self.source = source
        self.duration_s = duration_s
        self._live = Live(self._table([], 0.0), refresh_per_second=4, transient=False)
        self._live.start()

    def _table(self, checks: list[CheckResult], elapsed: float) -> Table:
        table = Table(title=f"Calibrating {self.source}: {elapsed:.0f} of {self.duration_s:.0f} s")
        for column in ("result", "check", "in words", "measured", "action"):
            table.add_column(column)
        for c in checks:
            value = "" if c.value is None else f"{c.value:g} {c.unit}"
            table.add_row(f"[{STYLE[c.status]}]{c.status.upper()}[/]", c.name, c.plain, value, c.action)
        if checks:
            result = verdict(checks)
            table.caption = f"Verdict so far: {result.text}"
        return table

    def update(self, m: Measurements) -> None:
        self._live.update(self._table(judge(m)[0], m.duration_s))

    def close(self) -> None:
        self._live.stop()


SYMBOL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "----"}


def calibrate(
    config_path: Path,
    *,
    source: str | None,
    duration_s: float,
    region: str | None,
    technician: str,
    note: str,
    as_json: bool,
    write: bool,
    report: Path | None = None,
    save_preview: bool = False,
    checkerboard: str | None = None,
    square_mm: float = 25.0,
) -> int:
    """Returns 0 when the room is ready (no check failed); 2 when checks must be fixed first, and then
    ``write`` writes no profile (the same rule as the verdict)."""
    config = load_config(config_path)
    spec = parse_source(source or config.capture.source)
    if region is not None:
        client_region = Region.parse(region)
    elif config.profile is not None:
        client_region = config.profile.client_region
    else:
        client_region = FULL_FRAME
    board = _board(checkerboard) if checkerboard else None
    live = None if as_json or not sys.stdout.isatty() else LiveView(spec.redacted, duration_s)
    detector = FaceDetector(config.vision.detector_range, config.vision.min_detection_confidence)
    started = time.monotonic()
    try:
        measurements = measure_source(
            spec,
            config,
            client_region,
            duration_s,
            detector,
            keep_preview=report is not None,  # a photo only with --save-preview, else blurred
            board=board,
            on_progress=live.update if live is not None else None,
        )
    finally:
        detector.close()
        if live is not None:
            live.close()
    checks, gain = judge(measurements)
    intrinsics = config.profile.intrinsics if config.profile is not None else None
    if board is not None:
        intrinsics = solve(measurements.board_views, board, square_mm)
        measurements.board_views.clear()
    profile = RoomProfile(
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        technician=technician,
        note=note,
        source=spec.redacted,
        client_region=client_region,
        analysis_fps=config.capture.analysis_fps,
        microphone_gain_db=round(gain, 1),
        checks=checks,
        intrinsics=intrinsics,
        preview_saved=save_preview and measurements.preview is not None,
    )
    elapsed = time.monotonic() - started
    result = verdict(checks)
    written = None
    if write and result.ready:
        written = profile_path(config_path)
        save_profile(profile, written)
    if report is not None:
        write_report(report, profile, measurements, elapsed, measurements.preview, preview_asked=save_preview)
    if as_json:
        body = profile.model_dump(mode="json") | {
            "elapsed_s": round(elapsed, 1),
            "written": str(written or ""),
            "verdict": "ready" if result.ready else "fix these first",
            "fix": [c.name for c in result.fix],
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        header = f"Calibration of {spec.redacted} ({elapsed:.0f} s, {len(measurements.frames)} frames):"
        sys.stdout.write(_text(header, checks, written, report, write=write))
    return 0 if result.ready else 2


def _text(
    header: str, checks: list[CheckResult], written: Path | None, report: Path | None, *, write: bool = False
) -> str:
    width = max(len(c.name) for c in checks)
    words = max(len(c.plain) for c in checks)
    result = verdict(checks)
    lines = [header, ""]
    for c in checks:
        value = "" if c.value is None else f"({c.value:g} {c.unit})"
        lines.append(f"  {SYMBOL[c.status]}  {c.name:<{width}}  {c.plain:<{words}}  {value:<24} {c.threshold}")
        if c.action:
            lines.append(f"        {'':<{width}}  -> {c.action}")
    lines += ["", f"Verdict: {'READY' if result.ready else 'FIX THESE FIRST'}"]
    if result.ready:
        better = ", ".join(c.plain for c in result.improve)
        lines.append(f"  the room may go live{f'; {len(result.improve)} could be better: {better}' if better else ''}")
    else:
        lines += [f"  - {c.plain}: {c.action}" for c in result.fix]
    lines.append("")
    if written:
        lines.append(f"profile written to {written}")
    elif write:
        lines.append("profile not written: fix the checks above first, then calibrate again")
    else:
        lines.append("profile not written (use --write)")
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines) + "\n"
