"""Room calibration: generated pictures and sounds that each fail one check for the right reason,
real photographs that pass, the real source end to end, and the client region in the runtime."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client import generate_latest
from skimage import data

from edge.calibration import Measurements, judge, measure_frame, measure_source
from edge.calibration.checks import av_offset
from edge.capture import parse_source
from edge.config import load_config
from edge.config.profile import FULL_FRAME, Region
from edge.runtime import Appliance
from edge.vision import FaceDetector
from tests.conftest import CONSENT, write_config

RATE = 16_000


def _scene(size: int = 480, centre: tuple[int, int] = (320, 240), bg: int = 118, gain: float = 1.0) -> np.ndarray:
    """The astronaut photograph scaled to ``size`` px with her face centred at ``centre``."""
    frame = np.full((480, 640, 3), bg, dtype=np.uint8)
    img = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    img = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    left, top = round(centre[0] - 0.44 * size), round(centre[1] - 0.235 * size)  # her face's place in the photo
    x0, y0, x1, y1 = max(0, left), max(0, top), min(640, left + size), min(480, top + size)
    frame[y0:y1, x0:x1] = img[y0 - top : y1 - top, x0 - left : x1 - left]
    return frame


def _backlit() -> np.ndarray:
    """A bright window behind a darker face: everything but the face lifted towards white."""
    frame = _scene(gain=0.55).astype(np.float32)
    mask = np.zeros(frame.shape[:2], dtype=np.uint8)
    cv2.ellipse(mask, (320, 240), (70, 90), 0, 0, 360, 255, -1)
    outside = mask == 0
    frame[outside] = frame[outside] * 0.25 + 200
    return np.clip(frame, 0, 255).astype(np.uint8)


SCENES: dict[str, Callable[[], np.ndarray]] = {
    "good": _scene,
    "dark": lambda: _scene(gain=0.18, bg=20),
    "backlit": _backlit,
    "blurred": lambda: cv2.GaussianBlur(_scene(), (0, 0), 4.0),
    "off_centre": lambda: _scene(centre=(560, 240)),
    "tiny_face": lambda: _scene(size=220),
}


def _speech() -> np.ndarray:
    t = np.arange(RATE * 4) / RATE
    tone = 0.2 * (np.sin(2 * np.pi * 220 * t) + 0.4 * np.sin(2 * np.pi * 660 * t))
    gate = (np.floor(t / 0.3) % 2 == 0).astype(np.float64)
    return (tone * gate + np.random.default_rng(0).normal(0, 3e-4, t.shape[0])).astype(np.float32)


SOUNDS: dict[str, Callable[[], np.ndarray]] = {
    "speech": _speech,
    "clipped": lambda: np.clip(_speech() * 8, -1, 1).astype(np.float32),
    "silence": lambda: np.random.default_rng(1).normal(0, 1e-5, RATE * 4).astype(np.float32),
    "dead": lambda: np.zeros(RATE * 4, np.float32),  # a muted input: digital silence
    "gated": lambda: (_speech() * (np.abs(_speech()) > 0.01)).astype(np.float32),  # a noise gate between words
}


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector("full", 0.5)


def _measurements(
    detector: FaceDetector, scene: str, sound: str = "speech", region: Region = FULL_FRAME
) -> Measurements:
    frame = SCENES[scene]()
    return Measurements(
        frames=[measure_frame(frame, detector, region) for _ in range(5)],
        audio=SOUNDS[sound](),
        has_audio=True,
        duration_s=0.5,
        configured_fps=10,
    )


def _measure(detector: FaceDetector, scene: str, sound: str = "speech", region: Region = FULL_FRAME) -> dict[str, str]:
    checks, _ = judge(_measurements(detector, scene, sound, region))
    return {c.name: c.status for c in checks}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("scene", "check", "region"),
    [
        ("dark", "exposure", FULL_FRAME),
        ("backlit", "backlight", FULL_FRAME),
        ("blurred", "sharpness", FULL_FRAME),
        ("off_centre", "face_inside", Region(x=0.0, y=0.0, w=0.92, h=1.0)),  # the region's edge cuts the face
        ("tiny_face", "face_size", FULL_FRAME),
    ],
)
def test_each_picture_fault_fails_its_check(detector: FaceDetector, scene: str, check: str, region: Region) -> None:
    statuses = _measure(detector, scene, region=region)
    assert statuses["face_found"] == "pass", "the face must still be found for the check to mean something"
    assert statuses[check] == "fail"


@pytest.mark.unit
def test_a_face_well_inside_the_region_passes_wherever_it_sits(detector: FaceDetector) -> None:
    """The face is judged by whether it is inside the region, not by its distance from the centre."""
    statuses = _measure(detector, "off_centre")
    assert statuses["face_inside"] == "pass"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25,5,50,90", r"not percentages \(that is 0.25,0.05,0.5,0.9\)"),
        ("0.5,0.1,0.8,0.9", "fractions of the frame"),
        ("0.1,0.1,0.5", "x,y,w,h as fractions"),
    ],
)
def test_a_region_given_wrongly_is_answered_in_the_technicians_terms(text: str, message: str) -> None:
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Region.parse(text)


@pytest.mark.unit
def test_the_verdict_is_ready_only_without_a_failed_check(detector: FaceDetector) -> None:
    from edge.calibration.checks import verdict

    good = judge(_measurements(detector, "good"))[0]
    assert verdict(good).ready and verdict(good).text == "ready"
    dark = judge(_measurements(detector, "dark"))[0]
    result = verdict(dark)
    assert not result.ready and "exposure" in [c.name for c in result.fix]
    assert result.text.startswith("fix these first: face too dark")
    assert all(c.plain for c in dark), "every check says its result in words"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("sound", "check"), [("clipped", "clipping"), ("silence", "mic_level"), ("silence", "speech_to_noise")]
)
def test_each_sound_fault_fails_its_check(detector: FaceDetector, sound: str, check: str) -> None:
    assert _measure(detector, "good", sound)[check] == "fail"


@pytest.mark.unit
def test_digital_silence_is_never_taken_for_a_quiet_room(detector: FaceDetector) -> None:
    dead = _measure(detector, "good", "dead")
    assert dead["mic_signal"] == "fail" and "noise_floor" not in dead
    gated = _measure(detector, "good", "gated")
    assert gated["noise_floor"] == "warn"


@pytest.mark.unit
def test_a_well_set_room_passes(detector: FaceDetector) -> None:
    statuses = _measure(detector, "good")
    # everything passes; the offset needs a clap, which this scene has not
    assert {k: v for k, v in statuses.items() if v != "pass"} == {"av_offset": "skip"}


@pytest.mark.unit
def test_no_face_in_the_region_fails_with_an_action(detector: FaceDetector) -> None:
    frame = SCENES["good"]()
    right_half = Region(x=0.6, y=0.0, w=0.4, h=1.0)
    m = Measurements(
        frames=[measure_frame(frame, detector, right_half)],
        audio=_speech(),
        has_audio=True,
        duration_s=0.1,
        configured_fps=10,
    )
    checks = {c.name: c for c in judge(m)[0]}
    assert checks["face_found"].status == "fail"
    assert "client region" in checks["face_found"].action
    assert checks["sharpness"].status == "skip"


def _calibrate(cfg: Path, clip: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`clinic-edge calibrate` on ``clip`` by technician tech-7, as a technician would run it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "calibrate",
            "--config",
            str(cfg),
            "--source",
            clip.as_uri(),
            "--technician",
            "tech-7",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_calibrate_the_demo_source_and_write_the_profile(tmp_path: Path, face_model: Path, demo_clip: Path) -> None:
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    # The demo's face is big enough at the room's default frame width (at the tests' 320 px it is not).
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("width = 320", "width = 640"), encoding="utf-8")
    proc = _calibrate(
        cfg,
        demo_clip,
        "--duration",
        "6",
        "--note",
        "camera above the door",
        "--json",
        "--write",
        "--region",
        "0.1,0.0,0.8,1.0",
    )
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["verdict"] == "ready" and body["fix"] == []
    statuses = {c["name"]: c["status"] for c in body["checks"]}
    assert statuses["face_found"] == "pass"  # the first 6 s of the demo show the face
    assert statuses["exposure"] == "pass"
    assert statuses["speech_to_noise"] == "pass"
    assert 4 <= body["elapsed_s"] <= 30
    profile = json.loads((tmp_path / "room-profile.json").read_text())
    assert profile["technician"] == "tech-7"
    assert profile["client_region"] == {"x": 0.1, "y": 0.0, "w": 0.8, "h": 1.0}
    assert load_config(cfg).profile is not None  # the runtime picks it up


def test_faces_outside_the_client_region_are_never_analysed(tmp_path: Path, face_model: Path, demo_clip: Path) -> None:
    """A region that excludes the astronaut (she sits left of centre): no face is analysed, and
    the runtime counts the faces it ignored."""
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    profile = {
        "created_at": "2026-11-01T10:00:00+00:00",
        "technician": "tech-7",
        "source": "test:",
        "client_region": {"x": 0.75, "y": 0.0, "w": 0.25, "h": 1.0},
        "analysis_fps": 10,
    }
    (tmp_path / "room-profile.json").write_text(json.dumps(profile))
    appliance = Appliance(load_config(cfg), demo_clip.as_uri())
    report = appliance.run(consent=CONSENT, duration_s=8)
    metrics = generate_latest(appliance.metrics.registry).decode()
    ignored = float(
        next(line.split()[1] for line in metrics.splitlines() if line.startswith("clinic_edge_faces_ignored_total"))
    )
    assert ignored >= 50
    rows = sqlite3.connect(tmp_path / "s" / "clinic-edge.db").execute("SELECT label, flags FROM windows").fetchall()
    assert len(rows) == report.windows
    assert all(label is None and "no_face" in json.loads(flags) for label, flags in rows)


@pytest.mark.unit
def test_an_invalid_profile_stops_the_start(tmp_path: Path, face_model: Path) -> None:
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    (tmp_path / "room-profile.json").write_text(
        json.dumps({"technician": "t", "client_region": {"x": 0.9, "y": 0, "w": 0.5, "h": 1}})
    )
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"room profile .* is invalid at .*run clinic-edge calibrate"):
        load_config(cfg)


@pytest.mark.parametrize("save_preview", [False, True])
def test_report_says_whether_a_preview_was_saved(
    tmp_path: Path, face_model: Path, demo_clip: Path, save_preview: bool
) -> None:
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    report = tmp_path / "report.html"
    args = ["--save-preview"] if save_preview else []
    proc = _calibrate(cfg, demo_clip, "--duration", "3", "--report", str(report), *args)
    assert proc.returncode in (0, 2), proc.stderr
    page = report.read_text()
    assert "<h1>Room calibration</h1>" in page
    assert "face_found" in page and "speech_to_noise" in page
    assert page.count("data:image/png;base64,") == 2  # the plots, and the preview: a photo or blurred
    assert ("Preview frame: <b>saved</b> as a photo" in page) is save_preview
    assert ("Preview frame: <b>blurred</b> past recognition" in page) is not save_preview


@pytest.mark.unit
def test_a_blurred_preview_shows_no_face(detector: FaceDetector) -> None:
    """The report's default preview keeps the room's layout and loses the person: the detector that
    finds the face in the photo finds none in its blurred copy."""
    from edge.calibration.report import blurred

    photo = SCENES["good"]()
    assert detector.detect(photo)
    assert not detector.detect(blurred(photo))


def _clap_clip(folder: Path, *, flash_s: float, click_s: float, seconds: float = 4.0) -> Path:
    """A clip where the picture flashes white at ``flash_s`` and a click sounds at ``click_s``."""
    folder.mkdir(parents=True, exist_ok=True)
    fps = 15
    for i in range(int(seconds * fps)):
        t = i / fps
        level = 235 if flash_s <= t < flash_s + 0.2 else 90
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((240, 320, 3), level, dtype=np.uint8))
    audio = np.random.default_rng(3).normal(0, 1e-3, int(seconds * RATE))
    start = int(click_s * RATE)
    audio[start : start + 160] = np.random.default_rng(4).uniform(-0.8, 0.8, 160)
    wav = folder / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    out = folder / "clap.mkv"
    pipeline = (
        f'multifilesrc location={folder}/%05d.png index=0 caps="image/png,framerate={fps}/1" ! pngdec ! videoconvert '
        "! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux. "
        f"filesrc location={wav} ! wavparse ! audioconvert ! vorbisenc ! queue ! mux. "
        f"matroskamux name=mux ! filesink location={out}"
    )
    subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], check=True, timeout=60)
    return out


@pytest.mark.parametrize(("click_s", "status"), [(2.0, "pass"), (2.3, "fail")])
def test_audio_video_offset_from_a_clap(
    tmp_path: Path, face_model: Path, detector: FaceDetector, click_s: float, status: str
) -> None:
    clip = _clap_clip(tmp_path / "clip", flash_s=2.0, click_s=click_s)
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    )
    m = measure_source(parse_source(clip.as_uri()), config, FULL_FRAME, 5.0, detector)
    offset = av_offset(m)
    assert offset is not None
    assert offset == pytest.approx(click_s - 2.0, abs=0.06)
    checks = {c.name: c for c in judge(m)[0]}
    assert checks["av_offset"].status == status
    if status == "fail":
        assert "sound arrives 300 ms after the picture" in checks["av_offset"].action.replace("29", "30").replace(
            "31", "30"
        )


def test_live_view_on_a_terminal(tmp_path: Path, face_model: Path, demo_clip: Path) -> None:
    """On a terminal the table re-renders as measurements come in (a real pseudo-terminal)."""
    import os
    import pty

    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "calibrate",
            "--config",
            str(cfg),
            "--source",
            demo_clip.as_uri(),
            "--duration",
            "4",
            "--technician",
            "tech-7",
        ],
        stdout=slave,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
    )
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(timeout=60) in (0, 2)
    text = screen.decode(errors="replace")
    assert text.count("Calibrating file://") >= 3  # re-rendered while running
    assert "face_found" in text and "\x1b[" in text  # a table with terminal control codes
    assert "profile not written" in text  # then the final summary


def test_a_room_that_is_not_ready_writes_no_profile_and_still_shows_its_picture(
    tmp_path: Path, face_model: Path, demo_clip: Path
) -> None:
    """A region that misses the client (she sits left of centre): the verdict is "fix these first",
    the exit code 2 and --write writes nothing; the preview the technician asked for is still saved
    (the first frame), and the report says the region held no face."""
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    report = tmp_path / "report.html"
    proc = _calibrate(
        cfg,
        demo_clip,
        "--duration",
        "3",
        "--region",
        "0.7,0.0,0.3,1.0",
        "--write",
        "--save-preview",
        "--report",
        str(report),
    )
    assert proc.returncode == 2, proc.stderr
    assert "Verdict: FIX THESE FIRST" in proc.stdout and "no face in the client region" in proc.stdout
    assert "profile not written: fix the checks above first" in proc.stdout
    assert not (tmp_path / "room-profile.json").exists()
    page = report.read_text()
    assert "Preview frame: <b>saved</b>" in page and "which held no face in any frame" in page
    assert 'id="verdict">Verdict: fix these first' in page
