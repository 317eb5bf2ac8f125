"""The storage stage: summarise completed windows, store them with their outbox summaries."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edge.analysis.results import WindowResult
from edge.analysis.summarize import WindowSummarizer
from edge.analysis.windower import WindowInput
from edge.capture.pipeline import BoundedQueue
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.metrics import Metrics
from edge.publish.payload import interval_summary, window_summary
from edge.store import Store

logger = logging.getLogger(__name__)


class WindowSink(threading.Thread):
    def __init__(
        self,
        config: AppConfig,
        *,
        db_path: Path,
        session_id: str,
        session_start: datetime,
        windows: BoundedQueue[WindowInput],
        metrics: Metrics,
        on_stored: Callable[[], None],
        topic: str,
    ) -> None:
        super().__init__(name="window-sink", daemon=True)
        self.config = config
        self.db_path = db_path
        self.session_id = session_id
        self.session_start = session_start
        self.windows = windows
        self.metrics = metrics
        self.on_stored = on_stored
        self.topic = topic
        self.finish = threading.Event()  # set by the producer when no more windows will come
        self.stored = 0
        self.failed = 0
        self.latencies_ms: deque[float] = deque(maxlen=10_000)  # recent windows only
        self._summarizer: WindowSummarizer | None = None
        self._interval: list[WindowResult] = []

    def run(self) -> None:
        store = Store(self.db_path, migrate_schema=False)
        try:
            while True:
                window = self.windows.get(timeout=0.1)
                if window is None:
                    if self.finish.is_set():
                        break
                    continue
                self._handle(store, window)
            self._flush_interval(store)
        finally:
            store.close()

    def _handle(self, store: Store, window: WindowInput) -> None:
        if self._summarizer is None:
            self._summarizer = WindowSummarizer(
                self.session_id, self.session_start, window.origin_s, self.config.vision, self.config.audio
            )
        t0 = time.perf_counter()
        result = self._summarizer.summarize(window)
        t1 = time.perf_counter()
        self.metrics.stage_latency.labels("summarize").observe(t1 - t0)
        per_window = self.config.mqtt.enabled and self.config.mqtt.summary == "window"
        room = self.config.room
        try:
            store.add_window(
                result,
                (
                    lambda seq, mid: (
                        self.topic,
                        window_summary(
                            result,
                            site=room.site,
                            room=room.room,
                            device_id=room.device_id,
                            seq=seq,
                            message_id=mid,
                        ).model_dump_json(),
                    )
                )
                if per_window
                else None,
            )
        except StoreError as exc:
            self.failed += 1
            self.metrics.store_failures.inc()
            logger.error("%s", exc)
            return
        done = time.monotonic()
        self.metrics.stage_latency.labels("store").observe(time.perf_counter() - t1)
        self.metrics.stage_latency.labels("window_to_store").observe(done - result.ready_monotonic)
        self.latencies_ms.append((done - result.ready_monotonic) * 1e3)
        self.metrics.windows.inc()
        self.stored += 1
        if self.config.mqtt.enabled and self.config.mqtt.summary == "interval":
            # Interval k holds the windows that start in [k * interval_s, (k + 1) * interval_s).
            bucket = int(result.start_s // self.config.mqtt.interval_s)
            if self._interval and int(self._interval[0].start_s // self.config.mqtt.interval_s) != bucket:
                self._flush_interval(store)
            self._interval.append(result)
        self.on_stored()

    def _flush_interval(self, store: Store) -> None:
        if not self._interval:
            return
        results, self._interval = self._interval, []
        room = self.config.room
        try:
            store.add_summary(
                lambda seq, mid: (
                    self.topic,
                    interval_summary(
                        results,
                        site=room.site,
                        room=room.room,
                        device_id=room.device_id,
                        seq=seq,
                        message_id=mid,
                    ).model_dump_json(),
                )
            )
        except StoreError as exc:
            self.metrics.store_failures.inc()
            logger.error("%s", exc)
        self.on_stored()
