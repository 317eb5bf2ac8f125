"""The analysis loop: frames and audio in, windows out, capture rebuilt when a live source fails.

A live source that errors or delivers nothing for ``capture.stall_timeout_s`` is reported (log,
``clinic_edge_source_up`` 0, status degraded ``capture``), torn down and rebuilt with a back-off
of 1 s doubling to 30 s (systemd's watchdog restarts the service if that does not help
within two minutes). Window indices and session times continue across rebuilds. A file
source that fails is an error: there is nothing to wait for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.analysis.frame import FrameAnalyzer
from edge.analysis.windower import Windower
from edge.capture.frames import VideoFrame
from edge.capture.pipeline import BoundedQueue, GstCapture
from edge.capture.source import SourceSpec
from edge.config.models import AppConfig
from edge.control.state import SessionControl
from edge.errors import SourceError
from edge.metrics import Metrics
from edge.results import WindowInput
from edge.runtime.notify import Liveness, Notifier
from edge.runtime.report import RunReport

logger = logging.getLogger(__name__)

LIVE_LAG_TOLERANCE_S = 3.0  # a live stream this far behind the other no longer holds windows back
BACKOFF_S = (1.0, 30.0)  # capped well below the unit's WatchdogSec, so rebuilds come first


PAUSED = "paused"  # a _segment outcome: the session was paused


@dataclass
class LoopHooks:
    on_source_state: Callable[[bool], None]  # False when the source is lost, True when it is back
    on_ready: Callable[[], None]  # called once, when the first capture is running
    sink_heartbeat: Callable[[], float]  # monotonic time of the storage stage's last loop
    on_pause_end: Callable[[float], None]  # seconds the pause lasted


class AnalysisLoop:
    def __init__(
        self,
        config: AppConfig,
        spec: SourceSpec,
        analyzer: FrameAnalyzer,
        *,
        windows: BoundedQueue[WindowInput],
        metrics: Metrics,
        report: RunReport,
        notifier: Notifier,
        stop: threading.Event,
        control: SessionControl,
        hooks: LoopHooks,
    ) -> None:
        self.config = config
        self.spec = spec
        self.analyzer = analyzer
        self.windows = windows
        self.metrics = metrics
        self.report = report
        self.notifier = notifier
        self.stop = stop
        self.control = control
        self.hooks = hooks
        self.restarts = 0

    def _halted(self) -> bool:
        return self.stop.is_set() or self.control.stop_requested.is_set()

    def _sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when a stop came first."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._halted():
                return True
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
        return self._halted()

    def _wait_while_paused(self) -> float:
        """Keep the camera and microphone released until resumed; returns the pause's length."""
        started = time.monotonic()
        self.notifier.status("paused: camera and microphone released")
        while self.control.paused and not self._halted():
            self.notifier.watchdog(healthy=True)  # nothing should flow while paused
            time.sleep(0.1)
        return time.monotonic() - started

    def run(self, duration_s: float | None) -> None:
        started = time.monotonic()
        deadline = None if duration_s is None else started + duration_s
        next_index = 0
        first_segment_start: float | None = None
        backoff = BACKOFF_S[0]
        while not self._halted():
            capture = GstCapture.from_config(self.spec, self.config.capture)
            try:
                capture.start()
            except SourceError as exc:
                if first_segment_start is None or not self.spec.live:
                    # at start the message goes to the operator; there is no session to keep
                    self._raise_unless_damaged(capture, next_index, exc)
                    return
                logger.warning("source %s still unavailable; next attempt in %.0f s", self.spec.redacted, backoff)
                if self._sleep(backoff) or (deadline is not None and time.monotonic() >= deadline):
                    break
                backoff = min(backoff * 2, BACKOFF_S[1])
                continue
            now = time.monotonic()
            if first_segment_start is None:
                first_segment_start = now
                self.hooks.on_ready()
            windower = Windower(
                self.config.windows.length_s,
                self.config.windows.hop_s,
                expect_video=False,
                expect_audio=False,
                lag_tolerance_s=LIVE_LAG_TOLERANCE_S if capture.sync else None,
                first_index=next_index,
                segment_offset_s=now - first_segment_start,
            )
            try:
                lost = self._segment(capture, windower, deadline)
            finally:
                capture.stop()
                self.report.frames_dropped += capture.video.dropped
                self.report.audio_dropped += capture.audio.dropped
            for window in windower.ready(flush=True):
                self.windows.put(window)
            next_index = windower.next_index
            if lost == PAUSED:
                self.hooks.on_pause_end(self._wait_while_paused())
                backoff = BACKOFF_S[0]
                continue
            if lost is None:
                return
            if not self.spec.live:  # a recording has no second chance: damaged, or its source failed
                self._raise_unless_damaged(capture, next_index, SourceError(lost))
                return
            self.restarts += 1
            self.metrics.source_restarts.inc()
            self.metrics.source_up.set(0)
            self.hooks.on_source_state(False)
            logger.error("%s; rebuilding the capture pipeline in %.0f s", lost, backoff)
            if self._sleep(backoff) or (deadline is not None and time.monotonic() >= deadline):
                return
            backoff = min(backoff * 2, BACKOFF_S[1])

    def _frame(self, frame: VideoFrame, windower: Windower, capture_waiting: int = 0) -> None:
        """One frame through the analyser (the frame is dropped after it) into the windower."""
        m = self.metrics
        t0 = time.perf_counter()
        # Frames already waiting behind this one: the analysis is behind and may reuse detections.
        analysis = self.analyzer.analyze(frame, behind=capture_waiting > 0)
        self.report.frame_ms.append((time.perf_counter() - t0) * 1e3)
        m.observe_stage("detect", analysis.detect_ms / 1e3)
        m.observe_stage("classify", analysis.classify_ms / 1e3)
        for stage, ms in analysis.hook_ms.items():  # the channels' per-frame work
            if stage != "classify_ms":
                m.observe_stage(stage.removesuffix("_ms"), ms / 1e3)
        m.observe_stage("frame", time.perf_counter() - t0)
        windower.add_frame(analysis)
        self.report.frames += 1
        m.frames.inc()
        if analysis.ignored_faces:
            m.faces_ignored.inc(analysis.ignored_faces)

    def _segment(self, capture: GstCapture, windower: Windower, deadline: float | None) -> str | None:
        """Analyse until the end, a stop, or the source is lost (returns why)."""
        cfg = self.config
        m = self.metrics
        dropped_seen = {"video": 0, "audio": 0, "window": self.windows.dropped}
        flowing = False
        while not self._halted():
            if deadline is not None and time.monotonic() >= deadline:
                logger.info("duration reached")
                return None
            if self.control.paused:
                logger.info("paused: releasing the camera and microphone")
                return PAUSED
            while (chunk := capture.audio.get_nowait()) is not None:
                windower.add_audio(chunk)
                m.audio_buffers.inc()
            frame = capture.video.get(timeout=0.05)
            if frame is not None:
                # Frames waiting behind this one mean the analysis is behind a source that delivers in
                # real time; a file decoded as fast as possible always has frames waiting, by design,
                # and its windows must not depend on the machine's speed.
                self._frame(frame, windower, capture.video.qsize() if capture.sync else 0)
                if not flowing:
                    capture.check_sinks()  # again, now that decoded streams are linked
                    flowing = True
                    m.source_up.set(1)
                    self.hooks.on_source_state(True)
            for window in windower.ready():
                self.windows.put(window)
            for stream, q in (("video", capture.video), ("audio", capture.audio), ("window", self.windows)):
                if q.dropped > dropped_seen[stream]:
                    m.dropped.labels(stream).inc(q.dropped - dropped_seen[stream])
                    dropped_seen[stream] = q.dropped
            self.notifier.watchdog(
                Liveness(
                    frame_age_s=capture.seconds_since_last_buffer(),
                    sink_age_s=time.monotonic() - self.hooks.sink_heartbeat(),
                    stall_timeout_s=cfg.capture.stall_timeout_s,
                ).healthy
            )
            ended, why = self._source_ended(capture, drained=frame is None)
            if ended:
                return why
        return None

    def _raise_unless_damaged(self, capture: GstCapture, windows: int, error: SourceError) -> None:
        """Raise ``error`` unless a recording's decoder failed before one whole window: then its media
        are damaged or cut short, which the room reports as a file that gave no window (exit code 2,
        :meth:`edge.runtime.app.Appliance.run`), not as a source lost."""
        if self.spec.live or windows > 0 or not capture.undecodable:
            raise error
        logger.error("%s", error)

    def _source_ended(self, capture: GstCapture, *, drained: bool) -> tuple[bool, str | None]:
        """(ended, why): why is None for a normal end (a file's), else the reason the source was lost."""
        if capture.error:
            return True, f"capture from {self.spec.redacted} failed: {capture.error}"
        if capture.eos.is_set() and drained and capture.video.qsize() == 0 and capture.audio.qsize() == 0:
            return True, (f"{self.spec.redacted} ended its stream" if self.spec.live else None)
        stall = self.config.capture.stall_timeout_s
        if self.spec.live and capture.seconds_since_last_buffer() > stall:
            return True, (
                f"no video or audio from {self.spec.redacted} for {stall:.0f} s; "
                "check the camera, microphone and cabling"
            )
        return False, None
