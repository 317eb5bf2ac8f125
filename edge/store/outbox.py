"""The outbox: summaries waiting for the broker, in the room's sequence, written in the same
transaction as what they summarise."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from edge.store.core import StoreCore, now_iso

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    message_id: str
    topic: str
    payload: str


class OutboxStore(StoreCore):
    def add_summary(self, summary: Callable[[int, str], tuple[str, str]]) -> int:
        """Put one summary (e.g. an interval's) in the outbox; returns its seq."""
        seq: int = self._write("a summary", lambda: self._enqueue(summary))
        return seq

    def _enqueue(self, summary: Callable[[int, str], tuple[str, str]]) -> int:
        # The device's sequence lives in its own row: purging sent outbox rows never sets it back.
        self.db.conn.execute("UPDATE device_seq SET last_seq = last_seq + 1 WHERE id = 1")
        seq = int(self.db.execute("SELECT last_seq FROM device_seq WHERE id = 1").fetchone()[0])
        message_id = str(uuid.uuid4())
        topic, payload = summary(seq, message_id)
        self._insert(
            "outbox",
            {"seq": seq, "message_id": message_id, "topic": topic, "payload": payload, "created_at": now_iso()},
        )
        return seq

    def pending(self, limit: int) -> list[OutboxRow]:
        rows = self.db.execute(
            "SELECT seq, message_id, topic, payload FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
            [limit],
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def pending_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def mark_sent(self, seq: int) -> None:
        self._write(
            "a publish acknowledgement",
            lambda: self.db.execute(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE seq = ?", [now_iso(), seq]
            ),
        )

    def mark_attempt(self, seq: int) -> None:
        self._write(
            "a publish attempt",
            lambda: self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", [seq]),
        )
