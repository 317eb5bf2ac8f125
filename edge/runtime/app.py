"""The running appliance: one session from start to stop.

Threads: GStreamer's streaming threads fill the capture queues; the calling thread analyses frames
and cuts windows; ``window-sink`` summarises and stores them; ``publisher`` sends the outbox. Queues
between them are bounded (see :mod:`edge.capture.pipeline` for the drop policy).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

from contract.manifest import ModelManifest
from edge.analysis.frame import FrameAnalyzer
from edge.capture.claim import session_claim
from edge.capture.pipeline import BoundedQueue
from edge.capture.source import SourceSpec, parse_source
from edge.channels.base import FrameModels
from edge.channels.load import ChannelModels
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.config.profile import FULL_FRAME
from edge.control.commands import CommandError, Consent, Erase, check_fresh, parse_command
from edge.control.local import SOCKET_NAME, ControlSocket
from edge.control.state import SessionControl, State
from edge.errors import EmptySourceError, StoreError
from edge.fusion.calibration import calibrated
from edge.inference.base import InferenceEngine
from edge.inference.face import FaceExpressionModel
from edge.inference.manifest import load_manifest
from edge.inference.pack import face_model_path
from edge.inference.shared import SharedEngines
from edge.metrics import Metrics
from edge.native import trim_heap
from edge.publish.mqtt import MqttClient
from edge.publish.publisher import OutboxPublisher
from edge.results import WindowInput
from edge.runtime.loop import AnalysisLoop, LoopHooks
from edge.runtime.notify import Notifier
from edge.runtime.report import RunReport
from edge.runtime.sink import DRAIN_TIMEOUT_S, WindowSink, wait_for_sink
from edge.store import Store
from edge.vision.detect import FaceDetector
from edge.vision.skin import SkinSampler

logger = logging.getLogger(__name__)


class Appliance:
    """Loads everything a session needs, failing early with a clear message, then runs sessions.

    ``run`` records one session now (consent given by the caller); ``serve`` waits in standby for
    start commands, as the service does. Both accept pause/resume/stop from the local control
    socket and the room's MQTT command topic.
    """

    def __init__(
        self,
        config: AppConfig,
        source: str | None = None,
        *,
        engines: SharedEngines | None = None,
        notifier: Notifier | None = None,
        registry: ChannelRegistry | None = None,
    ) -> None:
        """``engines`` and ``notifier`` come from a :class:`edge.runtime.device.Device` when the room
        shares its process with others; alone, the room has its own. ``registry`` is the room's
        channels (the product's by default)."""
        config = calibrated(config)  # the pack's fitted fusion, where it has one (edge.fusion.calibration)
        self.config = config
        self.registry = registry if registry is not None else default_registry()
        self.spec: SourceSpec = parse_source(source or config.capture.source)
        face_path = face_model_path(config.models)
        self.manifest: ModelManifest = load_manifest(face_path)
        engines = engines if engines is not None else SharedEngines()
        self.engine: InferenceEngine = engines.engine(face_path, self.manifest, config.inference.backends)
        self.face_model = FaceExpressionModel(self.engine)
        self.detector = FaceDetector(config.vision.detector_range, config.vision.min_detection_confidence)
        self.channel_models = ChannelModels.load(config, engines, self.registry)
        self.skin = SkinSampler() if config.channels.pulse.enabled else None
        trim_heap()  # loading freed whole model files' worth of buffers: back to the system (edge.native)
        self.db_path = config.storage.state_dir / config.storage.database
        self._prepare_database()  # open, check and migrate now: a bad database stops the start
        self.store: Store | None = None
        self.metrics = Metrics()
        self.metrics.backend.labels(
            self.engine.label, self.manifest.name, self.engine.requested, "yes" if self.engine.degraded else "no"
        ).set(1)
        # Asked for TensorRT and got the CPU (any model of the room): a degraded state, never silent.
        self.fallbacks = [
            f"{e.manifest.name}: {e.requested} -> {e.label} ({e.fallback_reason})" for e in engines.fallbacks()
        ]
        self.metrics.degraded.labels("inference").set(1 if self.fallbacks else 0)
        self.stop_event = threading.Event()
        self.notifier = notifier if notifier is not None else Notifier.from_environment()
        self.mqtt: MqttClient | None = None
        self.publisher: OutboxPublisher | None = None
        self.socket: ControlSocket | None = None
        self.control = SessionControl(on_change=self._state_changed)
        self._state_changed("standby")

    def _prepare_database(self) -> None:
        """Check and migrate the database, close sessions a crash left open, and apply retention
        (also when no session has run for a while)."""
        store = Store(self.db_path, registry=self.registry)
        try:
            store.close_abandoned()
            cutoff = datetime.now(timezone.utc) - timedelta(days=self.config.storage.retention_days)
            counts = store.purge(cutoff)
            if any(counts.values()):
                logger.info("retention at start: deleted %s", counts)
        finally:
            store.close()

    # -- control -----------------------------------------------------------------------------------
    def _state_changed(self, state: State) -> None:
        for name in ("standby", "recording", "paused"):
            self.metrics.session_state.labels(name).set(1 if name == state else 0)
        if state == "standby":
            self.metrics.session_ended()
        if self.mqtt is not None:
            self.mqtt.set_session(state)

    def command(self, raw: bytes, source: str) -> dict[str, str]:
        """Handle one control command from ``source``; malformed or disallowed ones are refused."""
        try:
            command = check_fresh(
                parse_command(raw),
                datetime.now(timezone.utc),
                self.config.control.command_ttl_s,
                self.config.control.consent_max_age_min * 60.0,
            )
            reply = self._erase(command, source) if isinstance(command, Erase) else self.control.handle(command, source)
        except CommandError as exc:
            self.metrics.commands.labels("rejected").inc()
            logger.warning("rejected command from %s: %s", source, exc)
            return {"result": "error", "error": str(exc)}
        self.metrics.commands.labels("accepted").inc()
        return reply

    def _erase(self, command: Erase, source: str) -> dict[str, str]:
        """Erase a finished session (never the one recording: the store refuses open sessions)."""
        from edge.review.erasure import erase_session  # noqa: PLC0415 - the review's database, on demand

        try:
            erased = erase_session(self.config, command.session_id, f"{source}: {command.requested_by}")
        except StoreError as exc:
            raise CommandError(str(exc)) from None
        if self.publisher is not None:
            self.publisher.wake()
        return {"result": "ok", "erased": command.session_id, **{k: str(v) for k, v in erased.counts.items()}}

    def _mqtt_command(self, _topic: str, payload: bytes) -> None:
        # Who may publish here is the broker's ACL's business (only the room's own credentials).
        self.command(payload, "mqtt")

    # -- lifecycle ---------------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.config
        # Each thread has its own connection; this one belongs to the thread that runs sessions.
        self.store = Store(self.db_path, migrate_schema=False, registry=self.registry)
        if cfg.metrics.enabled:
            self.metrics.serve(cfg.metrics.host, cfg.metrics.port)
        self.socket = ControlSocket(cfg.storage.state_dir / SOCKET_NAME, self.command)
        self.socket.start()
        if cfg.mqtt.enabled:
            self.mqtt = MqttClient(cfg.mqtt, cfg.room)
            self.mqtt.calibrated_at = cfg.profile.created_at if cfg.profile is not None else None
            self.mqtt.set_session(self.control.state)
            self.mqtt.set_degraded("inference", bool(self.fallbacks))
            self.mqtt.subscribe("command", self._mqtt_command)
            self.metrics.mqtt_connected.set(0)
            self.mqtt.connect(required=cfg.mqtt.required_at_start)
            self.metrics.mqtt_connected.set(1 if self.mqtt.connected.is_set() else 0)
            self.publisher = OutboxPublisher(self.db_path, self.mqtt, self.metrics, cfg.mqtt.max_inflight)
            self.publisher.start()

    def _close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher.join(timeout=5)
        if self.mqtt is not None:
            self.mqtt.stop()
        if self.socket is not None:
            self.socket.close()
        self.metrics.close()
        self.detector.close()
        self.engine.close()
        self.channel_models.close()
        if self.skin is not None:
            self.skin.close()
        self.notifier.close()
        if self.store is not None:
            self.store.close()
            self.store = None

    def close(self) -> None:
        """Release what the constructor loaded, for an appliance that will not run (``run`` and
        ``serve`` release everything themselves)."""
        self._close()

    def run(self, duration_s: float | None = None, *, consent: Consent) -> RunReport:
        """Record one session now, with ``consent`` already obtained."""
        try:
            self._open()
            self.control.begin(consent)
            try:
                report = self._session(duration_s, consent)
            finally:
                self.control.end()
            self._check_not_empty(report, duration_s)
            return report
        finally:
            self.notifier.stopping()
            self._close()

    def _check_not_empty(self, report: RunReport, duration_s: float | None) -> None:
        """A whole recorded file that gave no window was not analysed at all: say so, do not exit 0.

        Raises:
            EmptySourceError: naming the file, the frames it gave and the likely cause.
        """
        window = self.config.windows.length_s
        whole = duration_s is None or duration_s >= window
        if self.spec.live or report.windows > 0 or self.stop_event.is_set() or not whole:
            return
        raise EmptySourceError(
            f"{self.spec.redacted} gave {report.frames} frame(s) and no complete window (a window is {window:g} s): "
            "the file is shorter than that, truncated or damaged; the session was recorded as empty"
        )

    def serve(self) -> list[RunReport]:
        """Wait in standby for start commands and run a session for each, until asked to stop."""
        reports: list[RunReport] = []
        try:
            self._open()
            self.notifier.ready("standby: waiting for a start command with consent")
            while not self.stop_event.is_set():
                self.notifier.watchdog(healthy=True)  # nothing should flow in standby
                if not self.control.start_requested.wait(0.2):
                    continue
                consent = self.control.consent
                if consent is None:  # pragma: no cover - a start always carries consent
                    continue
                self.control.begin(consent)
                try:
                    reports.append(self._session(None, consent))
                finally:
                    self.control.end()
                self.notifier.status("standby: waiting for a start command with consent")
        finally:
            self.notifier.stopping()
            self._close()
        return reports

    def _session(self, duration_s: float | None, consent: Consent) -> RunReport:
        """One session: its row, the storage stage, the analysis loop until the end, the close."""
        cfg = self.config
        store = self.store
        if store is None:
            raise RuntimeError("the session store is opened by run() or serve()")
        session_start = datetime.now(timezone.utc)
        session_id = store.start_session(
            site=cfg.room.site,
            room=cfg.room.room,
            device_id=cfg.room.device_id,
            source_kind=self.spec.kind,
            backend=self.engine.label,
            model_sha256=self.manifest.sha256,
            consent=consent,
        )
        report = RunReport(
            session_id, self.db_path, self.spec.redacted, self.engine.label, room=f"{cfg.room.site}/{cfg.room.room}"
        )
        # Its own stop event: windows already cut are still stored when a stop is requested.
        live = self.spec.live or cfg.capture.realtime_files
        windows: BoundedQueue[WindowInput] = BoundedQueue(cfg.windows.queue, drop_oldest=live, stop=threading.Event())
        sink = self._sink(session_id, session_start, windows, live=live)
        sink.start()
        started = time.monotonic()
        loop = AnalysisLoop(
            cfg,
            self.spec,
            self._frame_analyzer(),
            windows=windows,
            metrics=self.metrics,
            report=report,
            notifier=self.notifier,
            stop=self.stop_event,
            control=self.control,
            hooks=self._hooks(store, session_id, sink),
        )
        try:
            with session_claim(cfg.storage.state_dir):  # the setup page's preview lets go of the devices first
                loop.run(duration_s)
        finally:
            # The session ends, not the service (serve goes back to standby): no STOPPING here.
            self.notifier.status(f"session {session_id} ending: storing its last windows")
            sink.finish.set()
            wait_for_sink(sink, live=self.spec.live)
            report.wall_s = time.monotonic() - started
            report.source_restarts = loop.restarts
            report.windows_dropped = windows.dropped
            self._end(store, report, sink)
            trim_heap()  # the session's transient buffers, back to the system before the next one
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

    def _sink(
        self, session_id: str, session_start: datetime, windows: BoundedQueue[WindowInput], *, live: bool
    ) -> WindowSink:
        """The stage that summarises the session's windows and stores them with their summaries."""
        cfg, mqtt, publisher = self.config, self.mqtt, self.publisher
        return WindowSink(
            cfg,
            db_path=self.db_path,
            session_id=session_id,
            session_start=session_start,
            windows=windows,
            metrics=self.metrics,
            on_stored=publisher.wake if publisher else (lambda: None),
            on_degraded=(lambda on: mqtt.set_degraded("storage", on)) if mqtt else (lambda _on: None),
            topic=mqtt.topic("summary") if mqtt else f"{cfg.mqtt.topic_prefix}/{cfg.room.site}/{cfg.room.room}/summary",
            channels=lambda: self.channel_models.session(self.face_model, self.control.explain_requested, live=live),
            registry=self.registry,
        )

    def _frame_analyzer(self) -> FrameAnalyzer:
        """Per frame: faces in the client region, then each channel's per-frame hook (fresh state for
        the session: the pulse's mesh regions, the detector's reuse count)."""
        cfg = self.config
        return FrameAnalyzer(
            self.detector,
            cfg.vision,
            cfg.profile.client_region if cfg.profile is not None else FULL_FRAME,
            cfg.profile.intrinsics if cfg.profile is not None else None,
            hooks=self.registry.frame_hooks(cfg, FrameModels(self.face_model, self.skin)),
        )

    def _hooks(self, store: Store, session_id: str, sink: WindowSink) -> LoopHooks:
        """What the analysis loop tells the rest of the room: media flowing, the source lost or back,
        a pause ended; and how it reads the storage stage's heartbeat."""
        mqtt = self.mqtt

        def ready() -> None:
            # Session time 0 is when media starts to flow, not when the session row was written: the
            # pipeline's start-up must not shift every window's wall-clock start.
            sink.session_start = datetime.now(timezone.utc)
            logger.info("session %s started on %s", session_id, self.spec.redacted)
            self.notifier.ready(f"analysing {self.spec.kind} source, session {session_id}")

        def source_state(up: bool) -> None:
            if mqtt is not None:
                mqtt.set_degraded("capture", not up)
            self.notifier.status("analysing" if up else "source lost, rebuilding capture")

        return LoopHooks(
            on_source_state=source_state,
            on_ready=ready,
            sink_heartbeat=lambda: sink.heartbeat,
            on_pause_end=lambda seconds: self._record_pause(store, session_id, seconds),
        )

    def _end(self, store: Store, report: RunReport, sink: WindowSink) -> None:
        """Record the session's end and its figures; give the outbox a moment to drain."""
        publisher, mqtt = self.publisher, self.mqtt
        report.windows = sink.stored
        report.store_failures = sink.failed
        report.windows_lost = sink.lost
        report.utterances_skipped = sink.analysis.utterances_skipped
        report.quick_declined = sink.analysis.quick_declined
        report.explanations_shed = sink.analysis.explanations_shed
        report.words_refused = dict(sink.analysis.words_refused)
        report.window_latency_ms = sink.latencies_ms
        try:
            store.end_session(report.session_id, frames=report.frames, frames_dropped=report.frames_dropped)
        except StoreError as exc:
            logger.error("could not record the end of session %s: %s", report.session_id, exc)
        if (
            publisher is not None
            and mqtt is not None
            and mqtt.connected.is_set()
            and not publisher.wait_idle(DRAIN_TIMEOUT_S)
        ):
            logger.warning("outbox not empty after %.0f s; the rest is sent on the next start", DRAIN_TIMEOUT_S)
        report.published = publisher.sent if publisher else 0
        report.unpublished = store.pending_count()

    def _record_pause(self, store: Store, session_id: str, seconds: float) -> None:
        try:
            store.record_pause(session_id, seconds)
        except StoreError as exc:
            logger.error("could not record a pause of session %s: %s", session_id, exc)

    def request_stop(self) -> None:
        self.stop_event.set()
