"""The running appliance: one session from start to stop.

Threads: GStreamer's streaming threads fill the capture queues; the calling thread analyses frames
and cuts windows; ``window-sink`` summarises and stores them; ``publisher`` sends the outbox. Queues
between them are bounded (see :mod:`edge.capture.pipeline` for the drop policy).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edge.analysis.frame import FrameAnalyzer
from edge.analysis.windower import WindowInput
from edge.capture.pipeline import BoundedQueue
from edge.capture.source import SourceSpec, parse_source
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.inference.engine import InferenceEngine, create_engine
from edge.inference.face import FaceExpressionModel
from edge.inference.manifest import ModelManifest, load_manifest
from edge.metrics import Metrics
from edge.publish.mqtt import MqttClient
from edge.publish.publisher import OutboxPublisher
from edge.runtime.loop import AnalysisLoop, LoopHooks
from edge.runtime.notify import Notifier
from edge.runtime.sink import WindowSink
from edge.store import Store
from edge.vision.detect import FaceDetector

logger = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
STATS_KEPT = 10_000


@dataclass
class RunReport:
    session_id: str
    database: Path
    source: str
    backend: str
    frames: int = 0
    frames_dropped: int = 0
    audio_dropped: int = 0
    windows: int = 0
    windows_dropped: int = 0
    store_failures: int = 0
    windows_lost: int = 0
    source_restarts: int = 0
    published: int = 0
    unpublished: int = 0
    wall_s: float = 0.0
    # The most recent measurements only, so a day-long session does not grow them without bound.
    window_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_KEPT))
    frame_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_KEPT))

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def latency_summary(self) -> str:
        if not self.window_latency_ms:
            return "n/a"
        lat = sorted(self.window_latency_ms)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        return f"median {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms"


class Appliance:
    """Loads everything a session needs, failing early with a clear message, then runs it."""

    def __init__(self, config: AppConfig, source: str | None = None) -> None:
        self.config = config
        self.spec: SourceSpec = parse_source(source or config.capture.source)
        self.manifest: ModelManifest = load_manifest(config.models.face)
        self.engine: InferenceEngine = create_engine(config.models.face, self.manifest, config.inference.backends)
        self.face_model = FaceExpressionModel(self.engine)
        self.detector = FaceDetector(config.vision.detector_range, config.vision.min_detection_confidence)
        self.db_path = config.storage.state_dir / config.storage.database
        Store(self.db_path).close()  # open, check and migrate now, so a bad database stops the start
        self.store: Store | None = None
        self.metrics = Metrics()
        self.metrics.backend.labels(self.engine.label, self.manifest.name).set(1)
        self.stop_event = threading.Event()
        self.notifier = Notifier.from_environment()

    def run(self, duration_s: float | None = None) -> RunReport:
        cfg = self.config
        mqtt: MqttClient | None = None
        publisher: OutboxPublisher | None = None
        # Each thread has its own connection; this one belongs to the thread that runs the session.
        self.store = Store(self.db_path, migrate_schema=False)
        try:
            if cfg.metrics.enabled:
                self.metrics.serve(cfg.metrics.host, cfg.metrics.port)
            if cfg.mqtt.enabled:
                mqtt = MqttClient(cfg.mqtt, cfg.room)
                self.metrics.mqtt_connected.set(0)
                mqtt.connect(required=cfg.mqtt.required_at_start)
                self.metrics.mqtt_connected.set(1 if mqtt.connected.is_set() else 0)
                publisher = OutboxPublisher(self.db_path, mqtt, self.metrics, cfg.mqtt.max_inflight)
                publisher.start()
            return self._session(duration_s, mqtt, publisher)
        finally:
            if publisher is not None:
                publisher.stop()
                publisher.join(timeout=5)
            if mqtt is not None:
                mqtt.stop()
            self.metrics.close()
            self.detector.close()
            self.engine.close()
            self.notifier.close()
            self.store.close()
            self.store = None

    def _session(
        self, duration_s: float | None, mqtt: MqttClient | None, publisher: OutboxPublisher | None
    ) -> RunReport:
        cfg = self.config
        store = self.store
        if store is None:
            raise RuntimeError("the session store is opened by run()")
        session_start = datetime.now(timezone.utc)
        session_id = store.start_session(
            site=cfg.room.site,
            room=cfg.room.room,
            device_id=cfg.room.device_id,
            source_kind=self.spec.kind,
            backend=self.engine.label,
            model_sha256=self.manifest.sha256,
        )
        report = RunReport(session_id, self.db_path, self.spec.redacted, self.engine.label)
        # Its own stop event: windows already cut are still stored when a stop is requested.
        live = self.spec.live or cfg.capture.realtime_files
        windows: BoundedQueue[WindowInput] = BoundedQueue(cfg.windows.queue, drop_oldest=live, stop=threading.Event())
        sink = WindowSink(
            cfg,
            db_path=self.db_path,
            session_id=session_id,
            session_start=session_start,
            windows=windows,
            metrics=self.metrics,
            on_stored=publisher.wake if publisher else (lambda: None),
            on_degraded=(lambda on: mqtt.set_degraded("storage", on)) if mqtt else (lambda _on: None),
            topic=mqtt.topic("summary") if mqtt else f"{cfg.mqtt.topic_prefix}/{cfg.room.site}/{cfg.room.room}/summary",
        )
        sink.start()
        started = time.monotonic()

        def ready() -> None:
            logger.info("session %s started on %s", session_id, self.spec.redacted)
            self.notifier.ready(f"analysing {self.spec.kind} source, session {session_id}")

        def source_state(up: bool) -> None:
            if mqtt is not None:
                mqtt.set_degraded("capture", not up)
            self.notifier.status("analysing" if up else "source lost, rebuilding capture")

        loop = AnalysisLoop(
            cfg,
            self.spec,
            FrameAnalyzer(self.detector, self.face_model, cfg.vision),
            windows=windows,
            metrics=self.metrics,
            report=report,
            notifier=self.notifier,
            stop=self.stop_event,
            hooks=LoopHooks(on_source_state=source_state, on_ready=ready, sink_heartbeat=lambda: sink.heartbeat),
        )
        try:
            loop.run(duration_s)
        finally:
            self.notifier.stopping()
            sink.finish.set()
            sink.join(timeout=DRAIN_TIMEOUT_S + 30)
            report.wall_s = time.monotonic() - started
            report.source_restarts = loop.restarts
            report.windows_dropped = windows.dropped
            report.windows = sink.stored
            report.store_failures = sink.failed
            report.windows_lost = sink.lost
            report.window_latency_ms = sink.latencies_ms
            try:
                store.end_session(session_id, frames=report.frames, frames_dropped=report.frames_dropped)
            except StoreError as exc:
                logger.error("could not record the end of session %s: %s", session_id, exc)
            if (
                publisher is not None
                and mqtt is not None
                and mqtt.connected.is_set()
                and not publisher.wait_idle(DRAIN_TIMEOUT_S)
            ):
                logger.warning("outbox not empty after %.0f s; the rest is sent on the next start", DRAIN_TIMEOUT_S)
            report.published = publisher.sent if publisher else 0
            report.unpublished = store.pending_count()
        logger.info(
            "session %s ended: %d frames (%.1f fps), %d windows, %d published, %d waiting",
            session_id,
            report.frames,
            report.fps,
            report.windows,
            report.published,
            report.unpublished,
        )
        return report

    def request_stop(self) -> None:
        self.stop_event.set()
