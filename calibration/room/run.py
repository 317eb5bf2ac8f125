"""``clinic-edge calibrate``: measure the room, print the checks, write the room profile."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from calibration.room.checks import judge
from calibration.room.measure import measure_source
from edge.capture.source import parse_source
from edge.config.load import load_config
from edge.config.profile import FULL_FRAME, Region, RoomProfile, profile_path, save_profile
from edge.vision.detect import FaceDetector

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
) -> int:
    """Returns 0 when nothing failed, 1 when a check failed (the profile is still written)."""
    config = load_config(config_path)
    spec = parse_source(source or config.capture.source)
    if region is not None:
        client_region = Region.parse(region)
    elif config.profile is not None:
        client_region = config.profile.client_region
    else:
        client_region = FULL_FRAME
    detector = FaceDetector(config.vision.detector_range, config.vision.min_detection_confidence)
    started = time.monotonic()
    try:
        measurements = measure_source(spec, config, client_region, duration_s, detector)
    finally:
        detector.close()
    checks, gain = judge(measurements)
    profile = RoomProfile(
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        technician=technician,
        note=note,
        source=spec.redacted,
        client_region=client_region,
        analysis_fps=config.capture.analysis_fps,
        microphone_gain_db=round(gain, 1),
        checks=checks,
        intrinsics=config.profile.intrinsics if config.profile is not None else None,
    )
    elapsed = time.monotonic() - started
    written = None
    if write:
        written = profile_path(config_path)
        save_profile(profile, written)
    if as_json:
        body = profile.model_dump(mode="json") | {"elapsed_s": round(elapsed, 1), "written": str(written or "")}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        width = max(len(c.name) for c in checks)
        lines = [f"Calibration of {spec.redacted} ({elapsed:.0f} s, {len(measurements.frames)} frames):", ""]
        for c in checks:
            value = "" if c.value is None else f"{c.value:g} {c.unit}"
            lines.append(f"  {SYMBOL[c.status]}  {c.name:<{width}}  {value:<22} {c.threshold}")
            if c.action:
                lines.append(f"        {'':<{width}}  -> {c.action}")
        lines.append("")
        lines.append(f"profile written to {written}" if written else "profile not written (use --write)")
        sys.stdout.write("\n".join(lines) + "\n")
    return 1 if any(c.status == "fail" for c in checks) else 0
