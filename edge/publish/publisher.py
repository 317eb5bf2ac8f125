"""Sends the outbox oldest first at QoS 1 and marks rows sent only when the broker acknowledges."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from edge.errors import PublishError, StoreError
from edge.metrics import Metrics
from edge.publish.mqtt import MqttClient
from edge.store import Store

logger = logging.getLogger(__name__)

REFUSED_BACKOFF_S = (30.0, 600.0)  # a refused summary is offered again after 30 s, doubling up to 10 min
MAX_PAYLOAD_BYTES = 4096  # summaries are about 1 KB; anything larger is not a summary


class OutboxPublisher(threading.Thread):
    """Owns its own database connection. ``wake()`` after storing a row; ``stop()`` to end."""

    def __init__(self, db_path: Path, client: MqttClient, metrics: Metrics, max_inflight: int) -> None:
        super().__init__(name="publisher", daemon=True)
        self.db_path = db_path
        self.client = client
        self.metrics = metrics
        self.max_inflight = max_inflight
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._acks: queue.Queue[tuple[int, bool, str]] = queue.Queue()
        self._inflight: dict[int, tuple[int, float]] = {}  # mid -> (seq, monotonic sent)
        self._held: dict[int, tuple[float, float]] = {}  # seq -> (retry after, backoff s) for refused rows
        self._lock = threading.Lock()
        self.sent = 0
        self.refused = 0
        self.idle = threading.Event()
        client.on_ack = self._on_ack
        client.on_connection_change = self._on_connection_change

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def _on_ack(self, mid: int, ok: bool, reason: str) -> None:
        self._acks.put((mid, ok, reason))
        self._wake.set()

    def _on_connection_change(self, connected: bool) -> None:
        self.metrics.mqtt_connected.set(1 if connected else 0)
        if not connected:
            with self._lock:  # unacknowledged rows stay pending and are sent again
                self._inflight.clear()
        self._wake.set()

    def run(self) -> None:
        store = Store(self.db_path, migrate_schema=False)
        try:
            while not self._halt.is_set():
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                self._drain_acks(store)
                self._send(store)
                try:
                    pending = store.pending_count()
                except StoreError:
                    pending = -1
                self.metrics.outbox_pending.set(max(pending, 0))
                if pending >= 0:
                    self.client.set_outbox(pending)
                if pending == 0:
                    self.idle.set()
                else:
                    self.idle.clear()
        finally:
            store.close()

    def _drain_acks(self, store: Store) -> None:
        while True:
            try:
                mid, ok, reason = self._acks.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                entry = self._inflight.pop(mid, None)
            if entry is None:
                continue
            seq, sent_at = entry
            if ok:
                store.mark_sent(seq)
                self._held.pop(seq, None)
                self.sent += 1
                self.metrics.published.inc()
                self.metrics.observe_stage("publish_ack", time.monotonic() - sent_at)
            else:
                store.mark_attempt(seq)
                self.refused += 1
                self.metrics.publish_refused.inc()
                _, backoff = self._held.get(seq, (0.0, REFUSED_BACKOFF_S[0] / 2))
                backoff = min(backoff * 2, REFUSED_BACKOFF_S[1])
                self._held[seq] = (time.monotonic() + backoff, backoff)
                logger.error(
                    "broker refused summary seq %d (%s): is this device allowed to publish on its topic? It stays "
                    "in the outbox and is offered again in %.0f s",
                    seq,
                    reason,
                    backoff,
                )

    def _send(self, store: Store) -> None:
        if not self.client.connected.is_set():
            return
        with self._lock:
            room = self.max_inflight - len(self._inflight)
            busy = {seq for seq, _ in self._inflight.values()}
        if room <= 0:
            return
        now = time.monotonic()
        held = {seq for seq, (after, _) in self._held.items() if after > now}
        for row in store.pending(room + len(busy) + len(held)):
            if row.seq in busy or row.seq in held:
                continue
            if len(row.payload.encode()) > MAX_PAYLOAD_BYTES:
                self._held[row.seq] = (float("inf"), 0.0)
                self.refused += 1
                self.metrics.publish_refused.inc()
                logger.error(
                    "outbox row seq %d is %d bytes, over the %d-byte cap for summaries; not publishing it",
                    row.seq,
                    len(row.payload.encode()),
                    MAX_PAYLOAD_BYTES,
                )
                continue
            try:
                mid = self.client.publish_topic(row.topic, row.payload)
            except PublishError as exc:
                logger.debug("publish deferred: %s", exc)
                return
            with self._lock:
                self._inflight[mid] = (row.seq, time.monotonic())
                room -= 1
            if room <= 0:
                return

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        self.idle.clear()
        self.wake()
        while time.monotonic() < deadline:
            if self.idle.wait(0.1):
                return True
            self.wake()
        return False
