"""The appliance's metrics, on a registry of their own (one per running appliance).

What a scraper may learn is the appliance's work, faults and configuration, never what the analysis
found about a client. Erasure cannot reach a time-series database, and with the session state gauge
any counter that grows with a session's content (disparity moments, explanations and why, who spoke
how much, whether the face was in view) tells that session's facts. So:

* counters and gauges count work that every window or frame does, faults and queues;
* stage timings are live histograms only for stages that run whatever the content (:data:`LIVE_STAGES`);
  the others (classify, transcribe, explain_<channel>, ...) run only on some windows, so their count
  would be a per-session fact: they are gathered in memory and published as recent quantiles
  (:data:`STAGE_QUANTILES`) when a session ends, never during one, and without a count.
"""

from __future__ import annotations

import logging
import platform
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from edge import __version__

logger = logging.getLogger(__name__)

# Stages that run on every frame or window whatever the client does: their counts say nothing about one.
LIVE_STAGES = frozenset({"detect", "frame", "summarize", "store", "window_to_store", "publish_ack"})
STAGE_QUANTILES = (0.5, 0.95)
STAGE_SAMPLE = 512  # observations per stage the quantiles are drawn from (across sessions)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.frames = Counter("clinic_edge_frames", "Video frames analysed", registry=r)
        self.audio_buffers = Counter("clinic_edge_audio_buffers", "Audio buffers received", registry=r)
        self.dropped = Counter(
            "clinic_edge_dropped", "Items dropped by a full queue (oldest first)", ["stream"], registry=r
        )
        self.session_state = Gauge(
            "clinic_edge_session_state", "1 for the current session state", ["state"], registry=r
        )
        self.commands = Counter("clinic_edge_commands", "Control commands by result", ["result"], registry=r)
        self.faces_ignored = Counter(
            "clinic_edge_faces_ignored", "Faces outside the client region, dropped before any model", registry=r
        )
        self.source_up = Gauge("clinic_edge_source_up", "1 while the source delivers media", registry=r)
        self.source_restarts = Counter(
            "clinic_edge_source_restarts", "Capture pipelines rebuilt after the source was lost", registry=r
        )
        self.windows = Counter("clinic_edge_windows", "Windows summarised and stored", registry=r)
        self.store_failures = Counter(
            "clinic_edge_store_failures", "Database writes that failed (results kept and retried)", registry=r
        )
        self.windows_lost = Counter(
            "clinic_edge_windows_lost", "Results lost because the database stayed unwritable", registry=r
        )
        self.degraded = Gauge("clinic_edge_degraded", "1 while a part is degraded", ["reason"], registry=r)
        self.published = Counter("clinic_edge_published", "Summaries acknowledged by the broker", registry=r)
        self.publish_refused = Counter("clinic_edge_publish_refused", "Summaries refused by the broker", registry=r)
        self.windows_waiting = Gauge(
            "clinic_edge_windows_waiting",
            "Windows analysed and waiting for a channel (the words channel's transcription) to settle",
            registry=r,
        )
        self.outbox_pending = Gauge("clinic_edge_outbox_pending", "Summaries waiting to be published", registry=r)
        self.mqtt_connected = Gauge("clinic_edge_mqtt_connected", "1 while connected to the broker", registry=r)
        self.backend = Gauge(
            "clinic_edge_inference_backend",
            "Inference backend in use (1), with the backend the room asked for first and whether it fell back",
            ["backend", "model", "requested", "degraded"],
            registry=r,
        )
        self.stage_latency = Histogram(
            "clinic_edge_stage_seconds",
            "Time spent per stage that runs whatever the content (detect, frame, summarize, store, "
            "window_to_store, publish_ack)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_recent = Gauge(
            "clinic_edge_stage_recent_seconds",
            "Quantiles of the recent time spent by stages that run on some windows only (classify, skin, audio, "
            "voice_cues, speech_model, transcribe, text, words, pulse, speakers, fusion, explain_<channel>); "
            "updated when a session ends",
            ["stage", "quantile"],
            registry=r,
        )
        self._recent: dict[str, deque[float]] = {}
        self.build = Info("clinic_edge_build", "Software build", registry=r)
        self.build.info({"version": __version__, "python": platform.python_version(), "machine": platform.machine()})
        self._server: Any = None
        self.port: int | None = None

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Time one stage: live for :data:`LIVE_STAGES`, else kept for the quantiles of :meth:`session_ended`."""
        if stage in LIVE_STAGES:
            self.stage_latency.labels(stage).observe(seconds)
            return
        self._recent.setdefault(stage, deque(maxlen=STAGE_SAMPLE)).append(seconds)

    def session_ended(self) -> None:
        """Publish the recent quantiles of the content-dependent stages (between sessions only)."""
        for stage, times in self._recent.items():
            ordered = sorted(times)
            for q in STAGE_QUANTILES:
                value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
                self.stage_recent.labels(stage, str(q)).set(value)

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the bound port (useful with port 0)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        self.port = int(server.server_port)
        logger.info("metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
