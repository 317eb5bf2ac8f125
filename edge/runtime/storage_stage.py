"""The storage stage: each window's result stored with its outbox summary (and the disparity events
that ended with it) in one transaction.

When the database cannot be written (disk full, I/O error) the appliance stays up: results wait
in a bounded in-memory buffer, the state is reported as degraded (metrics and the retained status),
writes are retried, and the buffer drains by itself once space is back. Only when the buffer
overflows are windows lost, and each one is counted.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from edge.analysis.summarize import SessionTail
from edge.channels.registry import ChannelRegistry
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.metrics import Metrics
from edge.publish.payload import disparity_event, interval_summary, window_summary
from edge.results import DisparityEvent, WindowResult
from edge.store import Store

logger = logging.getLogger(__name__)

RETRY_EVERY_S = 2.0
PURGE_EVERY_S = 3600.0

SummaryFn = Callable[[int, str], tuple[str, str]]


class StorageStage:
    """One per session, used by one thread (it owns ``store``)."""

    def __init__(
        self,
        config: AppConfig,
        store: Store,
        *,
        session_id: str,
        metrics: Metrics,
        on_stored: Callable[[], None],
        on_degraded: Callable[[bool], None],
        topic: str,
        registry: ChannelRegistry,
    ) -> None:
        self.config = config
        self.store = store
        self.session_id = session_id
        self.metrics = metrics
        self.on_stored = on_stored
        self.on_degraded = on_degraded
        self.topic = topic
        self.registry = registry
        self.stored = 0
        self.failed = 0  # write attempts that failed
        self.lost = 0  # windows that overflowed the retry buffer
        self.degraded = False
        self.latencies_ms: deque[float] = deque(maxlen=10_000)  # recent windows only
        self._interval: list[WindowResult] = []
        self._backlog: deque[tuple[WindowResult | None, SummaryFn | None]] = deque()
        self._next_retry = 0.0
        self._next_purge = 0.0

    def tick(self, now: float) -> None:
        """Between windows: the hourly retention purge, and a retry of what waits for the database."""
        if now >= self._next_purge:
            self._purge()
            self._next_purge = now + PURGE_EVERY_S
        if self._backlog and now >= self._next_retry:
            self._drain()

    def add(self, result: WindowResult) -> None:
        """Store a window with its summary (or into the current interval's summary)."""
        self._enqueue(result, self._window_summary(result))
        if self.config.mqtt.enabled and self.config.mqtt.summary == "interval":
            # Interval k holds the windows that start in [k * interval_s, (k + 1) * interval_s).
            bucket = int(result.start_s // self.config.mqtt.interval_s)
            if self._interval and int(self._interval[0].start_s // self.config.mqtt.interval_s) != bucket:
                self._flush_interval()
            self._interval.append(result)

    def close(self, tail: SessionTail | None) -> None:
        """The end of the session: the last interval, what belongs to no window, and a last attempt at
        what still waits for the database."""
        self._flush_interval()
        if tail is not None:
            self._add_tail(tail)
        deadline = time.monotonic() + RETRY_EVERY_S * 2
        while self._backlog and time.monotonic() < deadline:
            self._drain()
            if self._backlog:
                time.sleep(0.2)
        if self._backlog:
            self._lose(len(self._backlog), "the session ended while the database was unwritable")

    def _add_tail(self, tail: SessionTail) -> None:
        try:
            if tail.utterances and self.config.channels.words.store_transcript:
                self.store.add_transcripts(self.session_id, tail.utterances)
            if tail.events:
                self.store.add_events(self.session_id, tail.events, self._event_payloads(tail.events))
        except StoreError as exc:
            logger.error("the end of session %s could not be stored: %s", self.session_id, exc)

    # -- summaries ---------------------------------------------------------------------------------
    def _window_summary(self, result: WindowResult) -> SummaryFn | None:
        if not (self.config.mqtt.enabled and self.config.mqtt.summary == "window"):
            return None
        room = self.config.room
        return lambda seq, mid: (
            self.topic,
            window_summary(
                result,
                site=room.site,
                room=room.room,
                device_id=room.device_id,
                seq=seq,
                message_id=mid,
                registry=self.registry,
            ).model_dump_json(),
        )

    def _event_payloads(self, events: Sequence[DisparityEvent]) -> list[SummaryFn] | None:
        if not self.config.mqtt.enabled or not events:
            return None
        room = self.config.room
        topic = self.topic.rsplit("/", 1)[0] + "/event"

        def payload(event: DisparityEvent) -> SummaryFn:
            return lambda seq, mid: (
                topic,
                disparity_event(
                    event,
                    session_id=self.session_id,
                    site=room.site,
                    room=room.room,
                    device_id=room.device_id,
                    seq=seq,
                    message_id=mid,
                ).model_dump_json(),
            )

        return [payload(e) for e in events]

    def _interval_summary(self, results: list[WindowResult]) -> SummaryFn:
        room = self.config.room
        return lambda seq, mid: (
            self.topic,
            interval_summary(
                results,
                site=room.site,
                room=room.room,
                device_id=room.device_id,
                seq=seq,
                message_id=mid,
                registry=self.registry,
            ).model_dump_json(),
        )

    # -- storing ---------------------------------------------------------------------------------------
    def _flush_interval(self) -> None:
        if self._interval:
            results, self._interval = self._interval, []
            self._enqueue(None, self._interval_summary(results))

    def _enqueue(self, result: WindowResult | None, summary: SummaryFn | None) -> None:
        """Store now, or keep in order behind what already waits."""
        limit = self.config.storage.retry_buffer
        if len(self._backlog) >= limit:
            self._backlog.popleft()
            self._lose(1, f"the retry buffer of {limit} results is full")
        self._backlog.append((result, summary))
        if len(self._backlog) == 1 or time.monotonic() >= self._next_retry:
            self._drain()

    def _drain(self) -> None:
        while self._backlog:
            result, summary = self._backlog[0]
            t0 = time.perf_counter()
            try:
                if result is not None:
                    self.store.add_window(
                        result,
                        summary,
                        store_transcript=self.config.channels.words.store_transcript,
                        events=self._event_payloads(result.events),
                    )
                elif summary is not None:
                    self.store.add_summary(summary)
            except StoreError as exc:
                self.failed += 1
                self.metrics.store_failures.inc()
                self._next_retry = time.monotonic() + RETRY_EVERY_S
                if not self.degraded:
                    logger.error(
                        "%s; keeping results in memory (up to %d) and retrying", exc, self.config.storage.retry_buffer
                    )
                    self._set_degraded(True)
                return
            self._backlog.popleft()
            if result is not None:
                done = time.monotonic()
                self.metrics.observe_stage("store", time.perf_counter() - t0)
                self.metrics.observe_stage("window_to_store", done - result.ready_monotonic)
                self.latencies_ms.append((done - result.ready_monotonic) * 1e3)
                self.metrics.windows.inc()
                self.stored += 1
            self.on_stored()
        if self.degraded:
            logger.warning("database writable again; stored everything that waited")
            self._set_degraded(False)

    def _set_degraded(self, degraded: bool) -> None:
        self.degraded = degraded
        self.metrics.degraded.labels("storage").set(1 if degraded else 0)
        self.on_degraded(degraded)

    def _lose(self, count: int, why: str) -> None:
        self.lost += count
        self.metrics.windows_lost.inc(count)
        logger.error("%d result(s) could not be stored and are lost: %s", count, why)

    def _purge(self) -> None:
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.config.storage.retention_days)
        try:
            counts = self.store.purge(cutoff, keep=self.session_id)
        except StoreError as exc:
            logger.error("retention purge failed: %s", exc)
            return
        if any(counts.values()):
            logger.info("retention: deleted %s older than %s", counts, cutoff.isoformat(timespec="seconds"))
