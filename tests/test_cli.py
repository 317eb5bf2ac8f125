"""`clinic-edge run` from the command line: clear messages and exit code 2 for every expected problem."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONSENT_ARGS, Broker, free_port, write_config


def _run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, python: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python, "-m", "edge", *args], capture_output=True, text=True, timeout=180, cwd=cwd, env=env
    )


def test_run_prints_where_results_are(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    cfg = write_config(
        tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "state", mqtt_port=broker.port
    )
    proc = _run(
        "run", *CONSENT_ARGS, "--config", str(cfg), "--source", "test:", "--duration", "3", python=("-X", "importtime")
    )
    assert proc.returncode == 0, proc.stderr
    # Every channel at its defaults, and neither SciPy (~60 MiB a room; clinic_signals.filters) nor
    # matplotlib and the rest of MediaPipe's package (~31 MiB; edge.vision.solutions) nor PyAV (14 MiB;
    # edge.deferred) ever loaded.
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert {"clinic_signals.rppg", "clinic_signals.audio", "faster_whisper.transcribe"} <= imported
    assert "mediapipe.python.solution_base" in imported  # the face detection and mesh solutions' base
    assert not {name for name in imported if name.split(".")[0] in {"scipy", "matplotlib", "av"}}
    assert not {name for name in imported if name.startswith(("mediapipe.tasks", "mediapipe.python.solutions.drawing"))}
    assert f"database:  {tmp_path / 'state' / 'clinic-edge.db'}" in proc.stdout
    assert "summaries acknowledged, 0 waiting in the outbox" in proc.stdout
    # What loading left is kept out of the garbage collector's walks (edge.native.settle_heap).
    frozen = re.search(r"loaded: (\d+) objects kept out of garbage collection", proc.stderr)
    assert frozen is not None and int(frozen.group(1)) > 10_000, proc.stderr
    # Only the product's own log records: MediaPipe's and TensorFlow Lite's start-up chatter is at DEBUG.
    foreign = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not re.match(r"\d{4}-\d\d-\d\d |import time:", line)
    ]
    assert foreign == []


@pytest.mark.parametrize(
    ("config_extra", "args", "code", "message"),
    [
        ("analysis_fps = 99", (), 2, r"capture.analysis_fps = 99: Input should be less than or equal to 30"),
        ("framerate = 10", (), 2, r"capture.framerate: unknown key"),
        ("", ("--source", "file:///nowhere/session.mkv"), 3, r"source file not found: /nowhere/session.mkv"),
        ("", ("--source", "v4l2:///dev/video42"), 3, r"camera /dev/video42 not found"),
        ("", ("--source", "smb://share/clip"), 3, r"unsupported source 'smb://share/clip'"),
        ("", ("--duration", "-4"), 2, r"--duration must be a positive number of seconds, got -4.0"),
    ],
)
def test_bad_input_is_named(
    tmp_path: Path, face_model: Path, config_extra: str, args: tuple[str, ...], code: int, message: str
) -> None:
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    if config_extra:  # replaces the generated capture rate line
        cfg.write_text(cfg.read_text().replace("analysis_fps = 10", config_extra, 1))
    proc = _run("run", *CONSENT_ARGS, "--config", str(cfg), *args)
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_model_names_the_file_and_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "face.onnx"
    cfg = write_config(tmp_path / "room.toml", face_model=missing, state_dir=tmp_path / "s", mqtt_port=None)
    proc = _run("run", *CONSENT_ARGS, "--config", str(cfg))
    assert proc.returncode == 2
    assert f"model file not found: {missing}; build it with `clinic-export fer-face --out <path>`" in proc.stderr


def test_unreachable_broker_when_required(tmp_path: Path, face_model: Path) -> None:
    port = free_port()
    cfg = write_config(
        tmp_path / "room.toml",
        face_model=face_model,
        state_dir=tmp_path / "s",
        mqtt_port=port,
    )
    cfg.write_text(cfg.read_text().replace("[mqtt]\n", "[mqtt]\nrequired_at_start = true\n"))
    proc = _run("run", *CONSENT_ARGS, "--config", str(cfg), "--source", "test:", "--duration", "2")
    assert proc.returncode == 3
    assert f"MQTT broker 127.0.0.1:{port} is unreachable" in proc.stderr
    assert "set mqtt.required_at_start = false" in proc.stderr


def test_unreachable_broker_when_not_required_keeps_running(tmp_path: Path, face_model: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=port)
    proc = _run("run", *CONSENT_ARGS, "--config", str(cfg), "--source", "test:", "--duration", "4")
    assert proc.returncode == 0, proc.stderr
    assert f"MQTT broker 127.0.0.1:{port} is unreachable" in proc.stderr
    assert "summaries are kept in the local outbox" in proc.stderr
    assert "0 summaries acknowledged" in proc.stdout


def test_missing_config_file(tmp_path: Path) -> None:
    proc = _run("run", *CONSENT_ARGS, "--config", str(tmp_path / "absent.toml"))
    assert proc.returncode == 2
    assert f"config file not found: {tmp_path / 'absent.toml'}" in proc.stderr


def test_a_truncated_recording_is_an_error_not_an_empty_success(
    tmp_path: Path, face_model: Path, demo_clip: Path
) -> None:
    """A recording cut off after its first kilobytes decoded to one frame and exited 0 in silence."""
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(demo_clip.read_bytes()[:60_000])
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    proc = _run("run", *CONSENT_ARGS, "--config", str(cfg), "--source", truncated.as_uri())
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{truncated.as_uri()} gave" in proc.stderr and "no complete window (a window is 2.5 s)" in proc.stderr
    assert "truncated or damaged" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.unit
def test_native_chatter_goes_to_the_debug_log_and_own_records_pass_through(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    import logging
    import os

    from clinic_common.native_logs import native_logs_to

    log = logging.getLogger("native-test")
    with caplog.at_level(logging.DEBUG, logger="native-test"), native_logs_to(log):
        os.write(2, b"W0000 00:00:1.0 calculator.cc:186] some C++ warning\n")
        os.write(2, b"2026-11-30 10:00:00,000 INFO edge.x: the product's own line\n")
    assert [r.getMessage() for r in caplog.records] == ["W0000 00:00:1.0 calculator.cc:186] some C++ warning"]
    err = capfd.readouterr().err
    assert "the product's own line" in err and "some C++ warning" not in err
