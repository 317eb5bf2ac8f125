"""What a capture pipeline is made of, decided from the source and the GStreamer elements this
machine has.

On a Jetson, NVIDIA's elements do the heavy part in hardware: ``nvarguscamerasrc`` reads a CSI
camera (``csi://<sensor-id>``) through Argus, ``nvv4l2decoder`` decodes H.264/H.265 from files and
RTSP, and ``nvvidconv`` scales to the analysis width while the picture is still in NVMM (device)
memory; only the small picture is converted to RGB by the CPU. Elsewhere, or where those elements
are missing, the CPU path (``decodebin``, ``videoconvert``, ``videoscale``) does it all, as always.

On the CPU path H.264 goes to Cisco's OpenH264 (``openh264dec``, in Debian's plugins-bad) where it is
installed, ahead of FFmpeg's decoder (``avdec_h264``) that decodebin would pick by rank: both decode
the standard's exact picture, but FFmpeg's libraries bring a few dozen more (its filters' and
formats' dependencies) and a frame pool per thread, about 40 MiB of a room's resident memory against
a few; OpenH264 costs about 1 % more of one core at the analysis rate (docs/benchmarks.md). Streams
it does not take (interlaced, 10-bit, 4:2:2: its pads take 8-bit progressive profiles only) still go
to FFmpeg's.

A plan is plain data: tests describe both paths on any machine by injecting which elements exist;
:class:`edge.capture.pipeline.GstCapture` builds what the plan says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from contract.audio import SAMPLE_RATE
from edge.capture.source import SourceSpec
from edge.errors import SourceError

CSI_FRAMERATE = 30  # what Argus delivers; the plan's videorate brings it down to the analysis rate
CPU_DECODERS = ("openh264dec",)  # ranked above FFmpeg's on the CPU path, where installed (see above)
NVMM = "memory:NVMM"


@dataclass(frozen=True)
class Element:
    factory: str
    props: tuple[tuple[str, Any], ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.props)

    def describe(self) -> str:
        if self.factory == "capsfilter":
            return str(self.options["caps"])
        return " ".join([self.factory, *(f"{k.replace('_', '-')}={_text(k, v)}" for k, v in self.props)])


def _text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "uri":  # never a password in a log line
        parsed = urlparse(str(value))
        if parsed.username or parsed.password:
            return parsed._replace(
                netloc=f"***@{parsed.hostname or ''}{f':{parsed.port}' if parsed.port else ''}"
            ).geturl()
    return str(value)


def element(factory: str, **props: Any) -> Element:
    return Element(factory, tuple(props.items()))


def caps(text: str) -> Element:
    return element("capsfilter", caps=text)


@dataclass(frozen=True)
class CapturePlan:
    """The elements of one source's pipeline.

    ``source`` is linked in order; with ``dynamic`` its last element adds pads as it finds streams
    (``decodebin``), which take ``video`` (raw frames in system memory), ``nvmm_video`` (frames a
    hardware decoder left in NVMM memory) or ``audio``. Otherwise ``source`` links straight to
    ``video``. ``microphone`` is a second source for the audio (cameras have none)."""

    source: tuple[Element, ...]
    dynamic: bool
    video: tuple[Element, ...]
    nvmm_video: tuple[Element, ...] | None
    audio: tuple[Element, ...]
    microphone: tuple[Element, ...] = ()
    preferred_decoders: tuple[str, ...] = ()  # ranked above the CPU decoders for this pipeline
    hardware: tuple[str, ...] = ()  # the NVIDIA elements the plan uses

    @property
    def path(self) -> str:
        return "jetson" if self.hardware else "cpu"

    def describe(self) -> str:
        """The pipeline in ``gst-launch-1.0`` notation (dynamic pads as ``decoded.``), for logs and tests."""
        lines = [" ! ".join(e.describe() for e in self.source) + (" name=decoded" if self.dynamic else "")]
        video = " ! ".join(e.describe() for e in self.video) + " ! appsink"
        lines.append(("decoded. ! " if self.dynamic else "  ! ") + video)
        if self.dynamic and self.nvmm_video is not None:
            lines.append(f"decoded.({NVMM}) ! " + " ! ".join(e.describe() for e in self.nvmm_video) + " ! appsink")
        if self.audio:
            head = "decoded. ! " if self.dynamic and not self.microphone else ""
            mic = " ! ".join(e.describe() for e in self.microphone) + " ! " if self.microphone else ""
            lines.append(head + mic + " ! ".join(e.describe() for e in self.audio) + " ! appsink")
        if self.preferred_decoders:
            lines.append("preferred decoders: " + ", ".join(self.preferred_decoders))
        return "\n".join(lines)


def rgb_caps(width: int) -> str:
    return f"video/x-raw,format=RGB,width={width},pixel-aspect-ratio=1/1"


def _cpu_video(width: int, fps: int) -> tuple[Element, ...]:
    return (
        element("queue", max_size_buffers=4),
        element("videoconvert"),
        element("videorate", drop_only=True, max_rate=fps),
        element("videoscale"),
        element("videoconvert"),
        caps(rgb_caps(width)),
    )


def _nvmm_video(width: int, fps: int) -> tuple[Element, ...]:
    """From NVMM memory: nvvidconv scales in hardware and copies the small picture out as RGBA."""
    return (
        element("queue", max_size_buffers=4),
        element("nvvidconv"),
        caps(f"video/x-raw,format=RGBA,width={width},pixel-aspect-ratio=1/1"),
        element("videorate", drop_only=True, max_rate=fps),
        element("videoconvert"),
        caps(rgb_caps(width)),
    )


def _audio() -> tuple[Element, ...]:
    return (
        element("queue", max_size_buffers=16),
        element("audioconvert"),
        element("audioresample"),
        caps(f"audio/x-raw,format=F32LE,rate={SAMPLE_RATE},channels=1,layout=interleaved"),
    )


def _microphone(microphone: str) -> tuple[Element, ...]:
    kind, _, device = microphone.partition(":")
    if kind == "none":
        return ()
    factory = "alsasrc" if kind == "alsa" else "pulsesrc"
    return (element(factory, device=device),) if device else (element(factory),)


def plan_capture(
    spec: SourceSpec, *, width: int, fps: int, microphone: str, available: Callable[[str], bool]
) -> CapturePlan:
    """The pipeline for ``spec`` on a machine where ``available(factory)`` says which elements exist.

    Raises:
        SourceError: a CSI camera without NVIDIA's Argus and conversion elements.
    """
    scale_in_hardware = available("nvvidconv")
    if spec.kind == "test":
        pattern = (element("videotestsrc", is_live=True, pattern=spec.pattern),)
        if not spec.audio:
            return CapturePlan(pattern, False, _cpu_video(width, fps), None, ())
        tone = element("audiotestsrc", is_live=True, wave=spec.wave, freq=spec.freq_hz, samplesperbuffer=1600)
        return CapturePlan(pattern, False, _cpu_video(width, fps), None, _audio(), (tone,))
    if spec.kind == "csi":
        missing = [f for f in ("nvarguscamerasrc", "nvvidconv") if not available(f)]
        if missing:
            raise SourceError(
                f"the CSI camera {spec.uri} needs NVIDIA's {' and '.join(missing)} (JetPack's GStreamer plugins: "
                "`apt-get install nvidia-l4t-gstreamer`); on other machines use a v4l2:// camera"
            )
        argus: tuple[Element, ...] = (
            element("nvarguscamerasrc", sensor_id=spec.sensor_id),
            caps(f"video/x-raw({NVMM}),framerate={CSI_FRAMERATE}/1"),
        )
        mic = _microphone(microphone)
        return CapturePlan(
            argus,
            False,
            _nvmm_video(width, fps),
            None,
            _audio() if mic else (),
            mic,
            hardware=("nvarguscamerasrc", "nvvidconv"),
        )
    if spec.kind == "v4l2":
        mic = _microphone(microphone)
        camera = (element("v4l2src", device=spec.device), element("decodebin"))
        return CapturePlan(
            camera, True, _cpu_video(width, fps), None, _audio() if mic else (), mic, _cpu_decoders(available)
        )
    # file and rtsp: decode in hardware where the decoder and the converter out of NVMM both exist
    decoded = (element("uridecodebin", uri=spec.uri),)
    if available("nvv4l2decoder") and scale_in_hardware:
        return CapturePlan(
            decoded,
            True,
            _cpu_video(width, fps),
            _nvmm_video(width, fps),
            _audio(),
            preferred_decoders=("nvv4l2decoder",),
            hardware=("nvv4l2decoder", "nvvidconv"),
        )
    return CapturePlan(
        decoded, True, _cpu_video(width, fps), None, _audio(), preferred_decoders=_cpu_decoders(available)
    )


def _cpu_decoders(available: Callable[[str], bool]) -> tuple[str, ...]:
    return tuple(name for name in CPU_DECODERS if available(name))
