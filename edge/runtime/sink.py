"""The room's window thread: the analysis stage (:mod:`edge.runtime.analysis_stage`), then the storage
stage (:mod:`edge.runtime.storage_stage`), for each completed window in order. Its heartbeat tells
the watchdog that both keep up."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edge.analysis.summarize import SessionChannels
from edge.capture.pipeline import BoundedQueue
from edge.channels.registry import ChannelRegistry, default_registry
from edge.channels.words import FINISH_TIMEOUT_S
from edge.config.models import AppConfig
from edge.metrics import Metrics
from edge.results import WindowInput
from edge.runtime.analysis_stage import AnalysisStage
from edge.runtime.storage_stage import StorageStage
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
        on_degraded: Callable[[bool], None],
        topic: str,
        channels: Callable[[], SessionChannels] = SessionChannels,
        registry: ChannelRegistry | None = None,
    ) -> None:
        super().__init__(name="window-sink", daemon=True)
        self.config = config
        self.db_path = db_path
        self.windows = windows
        self.registry = registry if registry is not None else default_registry()
        self.analysis = AnalysisStage(
            config,
            session_id=session_id,
            session_start=session_start,
            metrics=metrics,
            channels=channels,
            registry=self.registry,
        )
        # The storage stage is made on this thread, which owns the database connection it writes with.
        self._storage: Callable[[Store], StorageStage] = lambda store: StorageStage(
            config,
            store,
            session_id=session_id,
            metrics=metrics,
            on_stored=on_stored,
            on_degraded=on_degraded,
            topic=topic,
            registry=self.registry,
        )
        self.storage: StorageStage | None = None
        self.finish = threading.Event()  # set by the producer when no more windows will come
        self.heartbeat = time.monotonic()  # end of the last loop; the watchdog checks it

    @property
    def session_start(self) -> datetime:
        return self.analysis.session_start

    @session_start.setter
    def session_start(self, value: datetime) -> None:
        """Session time 0, set when media starts to flow (before the first window)."""
        self.analysis.session_start = value

    # What the storage stage did, for the session's report.
    @property
    def stored(self) -> int:
        return self.storage.stored if self.storage else 0

    @property
    def failed(self) -> int:
        return self.storage.failed if self.storage else 0

    @property
    def lost(self) -> int:
        return self.storage.lost if self.storage else 0

    @property
    def latencies_ms(self) -> deque[float]:
        return self.storage.latencies_ms if self.storage else deque()

    def run(self) -> None:
        store = Store(self.db_path, migrate_schema=False, registry=self.registry)
        storage = self.storage = self._storage(store)
        try:
            while True:
                now = self.heartbeat = time.monotonic()
                storage.tick(now)
                window = self.windows.get(timeout=0.1)
                if window is None:
                    if self.finish.is_set():
                        break
                    for result in self.analysis.poll():
                        storage.add(result)
                    continue
                for result in self.analysis.analyze(window):
                    storage.add(result)
            tail = self.analysis.finish()
            for result in tail.windows if tail is not None else ():
                storage.add(result)
            storage.close(tail)
        finally:
            store.close()


DRAIN_TIMEOUT_S = 10.0  # the outbox's last publishes at a session's end
LIVE_DRAIN_S = FINISH_TIMEOUT_S + DRAIN_TIMEOUT_S + 30  # a live session's last windows: the words' limit first
SINK_REPORT_S = 30.0  # while the last windows are stored, the log says so this often


def wait_for_sink(sink: WindowSink, *, live: bool) -> None:
    """Let the storage stage complete and store the session's last windows. A file's windows are
    all stored, however long their words take on a busy machine; a live session waits at most
    ``LIVE_DRAIN_S`` (the words channel's own limit and the outbox's), then ends without them."""
    started = time.monotonic()
    while sink.is_alive():
        sink.join(timeout=SINK_REPORT_S)
        waited = time.monotonic() - started
        if not sink.is_alive():
            return
        if live and waited >= LIVE_DRAIN_S:
            logger.error("the session's last windows were not stored within %.0f s; they are lost", waited)
            return
        logger.info("storing the session's last windows (%.0f s so far)", waited)
