"""Which capture pipeline a source gets, with the GStreamer elements a machine has injected: NVIDIA's
hardware path on a Jetson (Argus for CSI cameras, nvv4l2decoder, nvvidconv scaling in NVMM memory)
and the CPU path elsewhere. The CPU path also runs for real in tests/test_capture.py; the Jetson
path is checked here as descriptions only (no Jetson is at hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.capture.plan import plan_capture
from edge.capture.source import SourceSpec, parse_source
from edge.errors import SourceError

JETSON = frozenset({"nvarguscamerasrc", "nvv4l2decoder", "nvvidconv"})
CPU_VIDEO = (
    "queue max-size-buffers=4 ! videoconvert ! videorate drop-only=true max-rate=5 ! videoscale ! videoconvert ! "
    "video/x-raw,format=RGB,width=320,pixel-aspect-ratio=1/1 ! appsink"
)
NVMM_VIDEO = (
    "queue max-size-buffers=4 ! nvvidconv ! video/x-raw,format=RGBA,width=320,pixel-aspect-ratio=1/1 ! "
    "videorate drop-only=true max-rate=5 ! videoconvert ! video/x-raw,format=RGB,width=320,pixel-aspect-ratio=1/1 "
    "! appsink"
)
AUDIO = (
    "queue max-size-buffers=16 ! audioconvert ! audioresample ! "
    "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved ! appsink"
)
FILE = SourceSpec("file", "file:///clips/room.mkv", live=False, path=Path("/clips/room.mkv"))
RTSP = SourceSpec("rtsp", "rtsp://cam:s3cret@10.0.0.5:554/stream", live=True)
CAMERA = SourceSpec("v4l2", "v4l2:///dev/video0", live=True, device="/dev/video0")
FILE_ON_JETSON = [
    "uridecodebin uri=file:///clips/room.mkv name=decoded",
    f"decoded. ! {CPU_VIDEO}",
    f"decoded.(memory:NVMM) ! {NVMM_VIDEO}",
    f"decoded. ! {AUDIO}",
    "preferred decoders: nvv4l2decoder",
]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spec", "microphone", "available", "path", "expected"),
    [
        (
            parse_source("test:?pattern=ball"),
            "none",
            JETSON,  # test sources never need the hardware
            "cpu",
            [
                "videotestsrc is-live=true pattern=ball",
                f"  ! {CPU_VIDEO}",
                f"audiotestsrc is-live=true wave=sine freq=440.0 samplesperbuffer=1600 ! {AUDIO}",
            ],
        ),
        (
            FILE,
            "none",
            frozenset(),
            "cpu",
            ["uridecodebin uri=file:///clips/room.mkv name=decoded", f"decoded. ! {CPU_VIDEO}", f"decoded. ! {AUDIO}"],
        ),
        (
            FILE,
            "none",
            JETSON,
            "jetson",
            FILE_ON_JETSON,
        ),
        (  # a decoder without the converter out of NVMM memory would strand the frames: CPU path
            FILE,
            "none",
            frozenset({"nvv4l2decoder"}),
            "cpu",
            ["uridecodebin uri=file:///clips/room.mkv name=decoded", f"decoded. ! {CPU_VIDEO}", f"decoded. ! {AUDIO}"],
        ),
        (
            RTSP,
            "none",
            JETSON,
            "jetson",
            [
                "uridecodebin uri=rtsp://***@10.0.0.5:554/stream name=decoded",  # no password in a log line
                f"decoded. ! {CPU_VIDEO}",
                f"decoded.(memory:NVMM) ! {NVMM_VIDEO}",
                f"decoded. ! {AUDIO}",
                "preferred decoders: nvv4l2decoder",
            ],
        ),
        (
            parse_source("csi://1"),
            "alsa:hw:1,0",
            JETSON,
            "jetson",
            [
                "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),framerate=30/1",
                f"  ! {NVMM_VIDEO}",
                f"alsasrc device=hw:1,0 ! {AUDIO}",
            ],
        ),
        (
            CAMERA,
            "none",
            JETSON,
            "cpu",
            ["v4l2src device=/dev/video0 ! decodebin name=decoded", f"decoded. ! {CPU_VIDEO}"],
        ),
        (
            CAMERA,
            "pulse:",
            frozenset(),
            "cpu",
            ["v4l2src device=/dev/video0 ! decodebin name=decoded", f"decoded. ! {CPU_VIDEO}", f"pulsesrc ! {AUDIO}"],
        ),
        (  # H.264 on the CPU: OpenH264 ahead of FFmpeg's decoder where it is installed
            FILE,
            "none",
            frozenset({"openh264dec"}),
            "cpu",
            [
                "uridecodebin uri=file:///clips/room.mkv name=decoded",
                f"decoded. ! {CPU_VIDEO}",
                f"decoded. ! {AUDIO}",
                "preferred decoders: openh264dec",
            ],
        ),
        (
            CAMERA,
            "none",
            frozenset({"openh264dec"}),
            "cpu",
            [
                "v4l2src device=/dev/video0 ! decodebin name=decoded",
                f"decoded. ! {CPU_VIDEO}",
                "preferred decoders: openh264dec",
            ],
        ),
        (  # the hardware decoder, never OpenH264, where the Jetson's path runs
            FILE,
            "none",
            JETSON | {"openh264dec"},
            "jetson",
            FILE_ON_JETSON,
        ),
    ],
    ids=[
        "test",
        "file-cpu",
        "file-jetson",
        "file-decoder-only",
        "rtsp-jetson",
        "csi",
        "usb-camera",
        "usb-pulse",
        "file-cpu-openh264",
        "usb-camera-openh264",
        "file-jetson-openh264",
    ],
)
def test_the_pipeline_follows_the_source_and_the_installed_elements(
    spec: SourceSpec, microphone: str, available: frozenset[str], path: str, expected: list[str]
) -> None:
    plan = plan_capture(spec, width=320, fps=5, microphone=microphone, available=available.__contains__)
    assert plan.path == path
    assert plan.describe().splitlines() == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("available", "missing"),
    [(frozenset(), "nvarguscamerasrc and nvvidconv"), (frozenset({"nvarguscamerasrc"}), "nvvidconv")],
)
def test_a_csi_camera_without_nvidias_elements_is_a_clear_error(available: frozenset[str], missing: str) -> None:
    with pytest.raises(SourceError, match=f"needs NVIDIA's {missing}"):
        plan_capture(parse_source("csi://0"), width=320, fps=5, microphone="none", available=available.__contains__)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("uri", "sensor", "problem"),
    [
        ("csi://0", 0, None),
        ("csi://3", 3, None),
        ("csi://", 0, None),
        ("csi://9", None, "sensor id 0-7"),
        ("csi://front", None, "sensor id 0-7"),
    ],
)
def test_csi_source_uris(uri: str, sensor: int | None, problem: str | None) -> None:
    if problem is not None:
        with pytest.raises(SourceError, match=problem):
            parse_source(uri)
        return
    spec = parse_source(uri)
    assert (spec.kind, spec.sensor_id, spec.live, spec.uri) == ("csi", sensor, True, f"csi://{sensor}")


@pytest.mark.unit
def test_this_machine_takes_the_cpu_path_and_a_csi_camera_says_why_not() -> None:
    """Here (no JetPack) the real element registry has none of NVIDIA's elements."""
    from edge.capture.pipeline import GstCapture, installed

    assert not any(installed(f) for f in JETSON)
    assert installed("videoconvert") and installed("uridecodebin")
    with pytest.raises(SourceError, match="nvidia-l4t-gstreamer"):
        GstCapture(parse_source("csi://0"), width=320, fps=5)
