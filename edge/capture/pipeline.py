"""The capture pipeline: GStreamer decodes, scales and resamples; appsinks hand numpy to queues.

Video leaves GStreamer as RGB at most ``analysis_fps`` frames per second and ``width`` pixels wide;
audio as 16 kHz mono float32. Timestamps are buffer PTS in seconds of the pipeline's running time,
shared by both streams, so windows line up on them.

Queues are bounded. For live sources (camera, RTSP, test) a full queue drops its *oldest* item and
counts it: the freshest picture of the room matters more than a late one. For files the streaming
thread waits for room instead, so a file is analysed completely.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.capture.frames import AudioChunk, VideoFrame
from edge.capture.gst import GST_IMPORT_ERROR, Gst
from edge.capture.plan import NVMM, CapturePlan, Element, plan_capture
from edge.capture.source import SourceSpec
from edge.config.models import CaptureConfig
from edge.errors import SourceError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
# Gst.is_initialized() is already true while another thread's Gst.init is still reading the plugin
# registry; rooms of one process starting together would then find elements missing.
_INIT_LOCK = threading.Lock()


def gst_init() -> None:
    """Initialise GStreamer or explain what is missing."""
    if Gst is None:
        raise SourceError(
            "GStreamer's Python bindings are not available "
            f"({GST_IMPORT_ERROR}); install python3-gst-1.0 and create the virtual environment with "
            "--system-site-packages (scripts/setup.sh does both)"
        )
    with _INIT_LOCK:
        if not Gst.is_initialized():
            Gst.init(None)


class BoundedQueue(Generic[_T]):
    """A bounded queue that either drops its oldest item (live) or blocks the producer (files)."""

    def __init__(self, maxsize: int, *, drop_oldest: bool, stop: threading.Event) -> None:
        self._q: queue.Queue[_T] = queue.Queue(maxsize=maxsize)
        self._drop_oldest = drop_oldest
        self._stop = stop
        self.dropped = 0
        self._lock = threading.Lock()

    def put(self, item: _T) -> None:
        if self._drop_oldest:
            with self._lock:
                while True:
                    try:
                        self._q.put_nowait(item)
                        return
                    except queue.Full:
                        try:
                            self._q.get_nowait()
                            self.dropped += 1
                        except queue.Empty:
                            pass
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self, timeout: float) -> _T | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def get_nowait(self) -> _T | None:
        try:
            return self._q.get_nowait()
        except queue.Empty:
            return None

    def qsize(self) -> int:
        return self._q.qsize()


@dataclass
class CaptureStats:
    video_frames: int = 0
    audio_buffers: int = 0
    last_buffer_monotonic: float = field(default_factory=time.monotonic)


class GstCapture:
    """Runs one source's pipeline. Use as a context manager; read frames from ``video`` and ``audio``.

    Bus messages are recorded, never raised from GStreamer's threads: ``error`` holds the first
    error and ``eos`` is set at end of stream (or on error), for the consumer to act on.
    """

    def __init__(
        self,
        spec: SourceSpec,
        *,
        width: int,
        fps: int,
        microphone: str = "none",
        realtime_files: bool = False,
        video_queue: int = 32,
        audio_queue: int = 256,
    ) -> None:
        gst_init()
        self.spec = spec
        self.width = width
        self.fps = fps
        self.microphone = microphone
        self.sync = spec.live or realtime_files
        self._stop = threading.Event()
        drop = spec.live or realtime_files
        self.video: BoundedQueue[VideoFrame] = BoundedQueue(video_queue, drop_oldest=drop, stop=self._stop)
        self.audio: BoundedQueue[AudioChunk] = BoundedQueue(audio_queue, drop_oldest=drop, stop=self._stop)
        self.stats = CaptureStats()
        self.eos = threading.Event()
        self.error: str | None = None
        self.undecodable = False  # the error came from a decoder: damaged or cut-short media
        self.has_audio = False
        self.has_video = False
        self._pipeline: Any = None
        self._bus_thread: threading.Thread | None = None
        self.plan: CapturePlan = plan_capture(spec, width=width, fps=fps, microphone=microphone, available=installed)

    @classmethod
    def from_config(cls, spec: SourceSpec, config: CaptureConfig, *, realtime_files: bool | None = None) -> GstCapture:
        """The capture a room's ``[capture]`` section describes (``realtime_files`` may override it)."""
        return cls(
            spec,
            width=config.width,
            fps=config.analysis_fps,
            microphone=config.microphone,
            realtime_files=config.realtime_files if realtime_files is None else realtime_files,
            video_queue=config.video_queue,
            audio_queue=config.audio_queue,
        )

    # -- building ---------------------------------------------------------------------------
    def _make(self, factory: str, **props: Any) -> Any:
        element = Gst.ElementFactory.make(factory, None)
        if element is None:
            raise SourceError(
                f"GStreamer element {factory!r} is missing; install the GStreamer plugin packages "
                "(scripts/setup.sh lists them)"
            )
        for key, value in props.items():
            element.set_property(key.replace("_", "-"), value)
        return element

    def _chain(self, elements: list[Any]) -> None:
        for element in elements:
            self._pipeline.add(element)
        for a, b in itertools.pairwise(elements):
            if not a.link(b):
                raise SourceError(f"cannot link {a.get_name()} to {b.get_name()}")

    def _element(self, spec: Element) -> Any:
        props = {k: Gst.Caps.from_string(v) if k == "caps" else v for k, v in spec.props}
        return self._make(spec.factory, **props)

    def _video_branch(self, elements: tuple[Element, ...]) -> list[Any]:
        sink = self._make("appsink", emit_signals=True, sync=self.sync, max_buffers=2, drop=False)
        sink.connect("new-sample", self._on_video)
        self.has_video = True
        return [*(self._element(e) for e in elements), sink]

    def _audio_branch(self) -> list[Any]:
        sink = self._make("appsink", emit_signals=True, sync=self.sync, max_buffers=8, drop=False)
        sink.connect("new-sample", self._on_audio)
        self.has_audio = True
        return [*(self._element(e) for e in self.plan.audio), sink]

    def _build(self) -> None:
        self._pipeline = Gst.Pipeline.new("capture")
        plan = self.plan
        for name in plan.preferred_decoders:  # let decodebin pick the plan's decoder first (hardware; OpenH264)
            factory = Gst.ElementFactory.find(name)
            if factory is not None:
                factory.set_rank(Gst.Rank.PRIMARY + 100)
        source = [self._element(e) for e in plan.source]
        if plan.dynamic:
            self._chain(source)
            source[-1].connect("pad-added", self._on_pad_added)
            if plan.source[0].factory == "uridecodebin" and self.spec.kind == "rtsp":
                source[-1].connect("source-setup", _rtsp_setup)
        else:
            self._chain([*source, *self._video_branch(plan.video)])
        if plan.microphone:
            self._chain([*(self._element(e) for e in plan.microphone), *self._audio_branch()])
        logger.info("capture (%s path): %s", plan.path, " ; ".join(plan.describe().splitlines()))

    def _on_pad_added(self, _element: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name() if caps and caps.get_size() else ""
        in_nvmm = bool(caps and caps.get_size() and caps.get_features(0).contains(NVMM))
        if name.startswith("video/") and not self.has_video:
            if in_nvmm and self.plan.nvmm_video is None:
                self._record_error("a decoder left video in NVMM memory but nvvidconv is missing")
                return
            branch = self._video_branch(self.plan.nvmm_video if in_nvmm and self.plan.nvmm_video else self.plan.video)
        elif name.startswith("audio/") and not self.has_audio and self.plan.audio and not self.plan.microphone:
            branch = self._audio_branch()
        else:
            logger.debug("ignoring decoded pad with caps %s", name)
            return
        self._chain(branch)
        for element in branch:
            element.sync_state_with_parent()
        if pad.link(branch[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            self._record_error(f"cannot link decoded {name} stream")

    # -- appsink callbacks (GStreamer streaming threads) ---------------------------------------
    def _on_video(self, sink: Any) -> Any:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        s = sample.get_caps().get_structure(0)
        rgb = rgb_frame(buf, s.get_value("width"), s.get_value("height"))
        self._touch()
        self.stats.video_frames += 1
        self.video.put(VideoFrame(_pts(buf, self.stats.video_frames / self.fps), rgb))
        return Gst.FlowReturn.FLUSHING if self._stop.is_set() else Gst.FlowReturn.OK

    def _on_audio(self, sink: Any) -> Any:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        samples = np.frombuffer(buf.extract_dup(0, buf.get_size()), dtype=np.float32)
        self._touch()
        self.stats.audio_buffers += 1
        self.audio.put(AudioChunk(_pts(buf, 0.0), samples, SAMPLE_RATE))
        return Gst.FlowReturn.FLUSHING if self._stop.is_set() else Gst.FlowReturn.OK

    def _touch(self) -> None:
        self.stats.last_buffer_monotonic = time.monotonic()

    # -- bus -----------------------------------------------------------------------------------
    def _record_error(self, message: str) -> None:
        if self.error is None:
            self.error = message
            logger.error("capture error: %s", message)
        self.eos.set()

    def _watch_bus(self) -> None:
        bus = self._pipeline.get_bus()
        mask = Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.WARNING
        while not self._stop.is_set():
            msg = bus.timed_pop_filtered(100 * Gst.MSECOND, mask)
            if msg is None:
                continue
            if msg.type == Gst.MessageType.ERROR:
                err, debug = msg.parse_error()
                factory = msg.src.get_factory() if hasattr(msg.src, "get_factory") else None
                kind = factory.get_klass().split("/") if factory is not None else []
                if "Decoder" in kind and "Bin" not in kind:  # a codec's decoder, not decodebin's typefinding
                    self.undecodable = True  # the media itself, not the device or the file's access
                self._record_error(f"{msg.src.get_name()}: {err.message}")
                logger.debug("capture error details: %s", debug)
            elif msg.type == Gst.MessageType.WARNING:
                warn, _ = msg.parse_warning()
                logger.warning("capture warning from %s: %s", msg.src.get_name(), warn.message)
            elif msg.type == Gst.MessageType.EOS:
                logger.info("end of stream from %s", self.spec.redacted)
                self.eos.set()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        """Build and start the pipeline.

        Raises:
            SourceError: the pipeline cannot be built or does not start within ``timeout_s``.
        """
        self._build()
        self._bus_thread = threading.Thread(target=self._watch_bus, name="gst-bus", daemon=True)
        self._bus_thread.start()
        ret = self._pipeline.set_state(Gst.State.PLAYING)
        if ret == Gst.StateChangeReturn.ASYNC:
            ret, _, _ = self._pipeline.get_state(int(timeout_s * Gst.SECOND))
        if ret == Gst.StateChangeReturn.FAILURE or (self.error and not self.eos.is_set()):
            time.sleep(0.2)  # let the bus thread record the reason
            reason = self.error or "the pipeline refused to start"
            self.stop()
            raise SourceError(f"cannot start source {self.spec.redacted}: {reason}")
        if ret == Gst.StateChangeReturn.ASYNC and self.error is None:
            self.stop()
            raise SourceError(f"source {self.spec.redacted} did not start within {timeout_s:.0f} s")
        try:
            self.check_sinks()
        except SourceError:
            self.stop()
            raise
        logger.info(
            "capture started: %s (video %s, audio %s, %d fps max, width %d)",
            self.spec.redacted,
            "yes" if self.has_video else "pending",
            "yes" if self.has_audio else "pending",
            self.fps,
            self.width,
        )

    def sink_factories(self) -> list[str]:
        """Factory names of every sink element in the pipeline, nested bins included."""
        found: list[str] = []

        def walk(bin_: Any) -> None:
            iterator = bin_.iterate_elements()
            while True:
                ok, element = iterator.next()
                if ok != Gst.IteratorResult.OK:
                    break
                if isinstance(element, Gst.Bin):
                    walk(element)
                elif element.get_factory() is not None and element.flags & Gst.ElementFlags.SINK:
                    found.append(element.get_factory().get_name())

        if self._pipeline is not None:
            walk(self._pipeline)
        return sorted(found)

    def check_sinks(self) -> None:
        """Raise if anything but the appsinks could take media out of the pipeline.

        RTSP's source bin sends RTCP receiver reports (reception statistics, no media) through
        its own ``udpsink``; that one is expected for rtsp:// sources.
        """
        allowed = {"appsink"} | ({"udpsink", "fakesink"} if self.spec.kind == "rtsp" else set())
        unexpected = [name for name in self.sink_factories() if name not in allowed]
        if unexpected:
            raise SourceError(f"capture pipeline has unexpected sink elements {unexpected}; refusing to run")

    def seconds_since_last_buffer(self) -> float:
        return time.monotonic() - self.stats.last_buffer_monotonic

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the pipeline (NULL state) and the bus thread; safe to call twice."""
        self._stop.set()
        if self._pipeline is not None:
            done = threading.Event()

            def _to_null() -> None:
                self._pipeline.set_state(Gst.State.NULL)
                done.set()

            threading.Thread(target=_to_null, name="gst-stop", daemon=True).start()
            if not done.wait(timeout_s):
                logger.warning("pipeline did not reach NULL within %.0f s", timeout_s)
        if self._bus_thread is not None:
            self._bus_thread.join(timeout=2.0)
            self._bus_thread = None

    def __enter__(self) -> GstCapture:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def installed(factory: str) -> bool:
    """Whether this machine's GStreamer has the element ``factory``."""
    gst_init()
    return Gst.ElementFactory.find(factory) is not None


def rgb_frame(buf: Any, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The frame of an RGB buffer as an array of its own: one copy, because GStreamer reuses the
    buffer's memory once the callback returns, while the frame waits in the queue (about 0.07 ms
    for 640x480; benchmarks/run.py measures it)."""
    stride = (width * 3 + 3) & ~3  # GStreamer pads RGB rows to 4 bytes
    data = np.frombuffer(buf.extract_dup(0, buf.get_size()), dtype=np.uint8)
    return data[: stride * height].reshape(height, stride)[:, : width * 3].reshape(height, width, 3)


def _pts(buf: Any, fallback: float) -> float:
    pts = int(buf.pts)
    if pts == Gst.CLOCK_TIME_NONE:
        return fallback
    return pts / float(Gst.SECOND)


def _rtsp_setup(_decodebin: Any, source: Any) -> None:
    if source.find_property("latency") is not None:
        source.set_property("latency", 200)
