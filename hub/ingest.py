"""Validates the rooms' messages and stores them in batches.

A batch (the messages that arrived within ``ingest.batch_ms``, at most ``ingest.batch_size``) is
stored in one transaction with a few statements (:mod:`hub.bulk`); the subscriber acknowledges its
messages only after the commit (:mod:`hub.subscriber`), so an acknowledged message is never lost.
Duplicates (same ``message_id``, in the batch or stored before by any worker) are counted and
skipped; a jump in a device's ``seq`` is recorded as a gap, and a late message fills its gap.

Each message is judged on its own: one that is too large, malformed, out of bounds (the contract's
models bound every field), too old or from the future, or not the publishing room's (a device or a
session already known under another site or room) is set aside in ``dead_letters`` with its reason
(never its payload), counted in ``clinic_hub_dead_letters_total{reason}`` and acknowledged. If a
batch fails in any other way except the database being unavailable, its messages are stored one by
one and the one that fails is set aside. Nothing a message carries can stop ingest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import ValidationError

from contract.payload import Event, Retract, Status, Summary
from hub import bulk
from hub.bulk import Contended, Message, Refused, prune_gaps
from hub.config import HubConfig
from hub.metrics import HubMetrics
from hub.store import dead_letters, messages, retracted

logger = logging.getLogger(__name__)

# Failures after which a batch is tried again (the database, not a message, failed; or a release
# sealed a session part meanwhile).
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, Contended)
FUTURE_TOLERANCE = dt.timedelta(days=1)
KINDS = ("summary", "status", "event", "retract")  # the last part of a room's topics the hub reads

__all__ = ["TRANSIENT", "Ingest", "Outcome", "Refused"]


@dataclass(frozen=True)
class Outcome:
    result: str  # stored | duplicate | invalid
    detail: str = ""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


GAPS_PER_DEVICE = 1000  # open gaps kept per device; older ones stay counted as missing


class Ingest:
    """Validates and stores messages; used by the MQTT subscriber and callable directly."""

    def __init__(
        self,
        engine: sa.Engine,
        metrics: HubMetrics,
        dedup_days: int = 30,
        *,
        max_message_bytes: int = 64 * 1024,
        max_age_days: int = 400,
        dead_letter_days: int = 90,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.dedup_days = dedup_days
        self.dead_letter_days = dead_letter_days
        self.max_message_bytes = max_message_bytes
        self.max_age = dt.timedelta(days=max_age_days)

    @classmethod
    def configured(cls, engine: sa.Engine, metrics: HubMetrics, config: HubConfig) -> Ingest:
        """Ingest with the hub's configured limits."""
        return cls(
            engine,
            metrics,
            config.dedup_days,
            max_message_bytes=config.max_message_bytes,
            max_age_days=config.max_age_days,
            dead_letter_days=config.dead_letter_days,
        )

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """Store one message from ``<prefix>/<site>/<room>/(summary|status)``, or set it aside.

        Raises:
            sqlalchemy.exc.OperationalError (or another of ``TRANSIENT``): the database is unavailable;
            the message must be redelivered.
        """
        return self.store_batch([(topic, payload)])[0]

    def store_batch(self, items: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Store ``(topic, payload)`` messages in one transaction; an outcome per message, in order.

        Raises:
            One of ``TRANSIENT``: nothing of the batch was stored; it must be tried again.
        """
        started = time.perf_counter()
        parsed: list[Message] = []
        refused: list[tuple[int, Refused]] = []
        for index, (topic, payload) in enumerate(items):
            try:
                parsed.append(self._parse(index, topic, payload))
            except Refused as exc:
                refused.append((index, exc))
        now = _now()
        try:
            with self.engine.begin() as conn:
                result = bulk.store(conn, parsed, now)
                refused += result.refused
                self._set_aside(conn, items, refused, now)
        except TRANSIENT:
            raise
        except Exception as exc:  # one message broke the batch: store them one by one
            if len(items) == 1:
                logger.exception("a message from %s could not be stored", items[0][0][:200])
                error = Refused("error", f"{type(exc).__name__}: {exc}")
                with self.engine.begin() as conn:
                    self._set_aside(conn, items, [(0, error)], now)
                self._count_refused(items, [(0, error)])
                return [Outcome("invalid", f"error: {error.detail}")]
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            logger.warning("a batch of %d failed (%s); storing its messages one by one", len(items), reason)
            return [outcome for item in items for outcome in self.store_batch([item])]
        return self._outcomes(items, result, refused, time.perf_counter() - started)

    def _outcomes(
        self,
        items: Sequence[tuple[str, bytes]],
        result: bulk.Result,
        refused: list[tuple[int, Refused]],
        seconds: float,
    ) -> list[Outcome]:
        """After the commit: the outcomes, the metrics and the log."""
        outcomes: list[Outcome | None] = [None] * len(items)
        m = self.metrics
        committed = dt.datetime.now(dt.timezone.utc)
        for msg in result.stored:
            outcomes[msg.index] = Outcome("stored")
            if msg.event is not None or msg.retract is not None:
                m.sequenced.labels(msg.topic.rsplit("/", 1)[-1]).inc()
            elif msg.summary is not None:
                m.summaries.labels("stored").inc()
                span = msg.summary.span
                ended = dt.datetime.fromisoformat(span.started_at.replace("Z", "+00:00")) + dt.timedelta(
                    seconds=span.end_s - span.start_s
                )
                m.summary_lag.observe(max((committed - ended).total_seconds(), 0.0))
            else:
                m.statuses.labels("stored").inc()
        for msg in result.duplicates:
            outcomes[msg.index] = Outcome("duplicate")
            m.summaries.labels("duplicate").inc()
        for index, exc in refused:
            outcomes[index] = Outcome("invalid", f"{exc.kind}: {exc.detail}")
        self._count_refused(items, refused)
        m.missing.inc(result.missing)
        m.late.inc(result.late)
        if result.rooms_online is not None:
            m.rooms_online.set(result.rooms_online)
        m.batch_size.observe(len(items))
        m.ingest_seconds.observe(seconds)
        return [o if o is not None else Outcome("invalid", "unhandled") for o in outcomes]

    def _count_refused(self, items: Sequence[tuple[str, bytes]], refused: list[tuple[int, Refused]]) -> None:
        for index, exc in refused:
            topic = items[index][0]
            self.metrics.dead_letters.labels(exc.kind).inc()
            kind = topic.rsplit("/", 1)[-1]
            if kind in ("event", "retract"):
                self.metrics.sequenced.labels(kind).inc(0)
            (self.metrics.statuses if kind == "status" else self.metrics.summaries).labels("invalid").inc()
            logger.warning("set aside a message from %s (%s): %s", topic[:200], exc.kind, exc.detail[:200])

    def _parse(self, index: int, topic: str, payload: bytes) -> Message:
        parts = topic.split("/")
        if len(parts) < 3 or parts[-1] not in KINDS:
            raise Refused("topic", f"unexpected topic {topic[:200]!r}")
        if len(payload) > self.max_message_bytes:
            raise Refused("too_large", f"{len(payload)} bytes (at most {self.max_message_bytes})")
        site, room, kind = parts[-3], parts[-2], parts[-1]
        try:  # pydantic parses the JSON itself (faster than json.loads, bounded nesting)
            if kind == "status":
                return Message(index, topic, site, room, status=Status.model_validate_json(payload))
            if kind in ("event", "retract"):
                return self._sequenced(index, topic, site, room, kind, payload)
            summary = Summary.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            detail = f"{exc.error_count()} validation error(s), first {where or 'payload'}: {first['msg']}"
            raise Refused("malformed", detail[:200]) from None
        except (ValueError, RecursionError) as exc:
            raise Refused("malformed", str(exc).splitlines()[0][:200]) from None
        if (summary.site, summary.room) != (site, room):
            raise Refused("identity", f"payload names {summary.site}/{summary.room}, topic {site}/{room}")
        self._recent(summary)
        return Message(index, topic, site, room, summary=summary)

    @staticmethod
    def _sequenced(index: int, topic: str, site: str, room: str, kind: str, payload: bytes) -> Message:
        """A disparity event (it only holds its place in the sequence) or a retraction."""
        body: Event | Retract = (Event if kind == "event" else Retract).model_validate_json(payload)
        if (body.site, body.room) != (site, room):
            raise Refused("identity", f"payload names {body.site}/{body.room}, topic {site}/{room}")
        if isinstance(body, Event):
            return Message(index, topic, site, room, event=body)
        return Message(index, topic, site, room, retract=body)

    def _recent(self, s: Summary) -> None:
        """A session that started within ``max_age_days`` and not in the future (by the hub's clock)."""
        stamp = dt.datetime.fromisoformat(s.span.started_at.replace("Z", "+00:00"))
        now = dt.datetime.now(dt.timezone.utc)
        if not now - self.max_age <= stamp <= now + FUTURE_TOLERANCE:
            raise Refused("out_of_range", f"span started at {s.span.started_at}, received {now:%Y-%m-%d}")

    @staticmethod
    def _set_aside(
        conn: sa.Connection, items: Sequence[tuple[str, bytes]], refused: list[tuple[int, Refused]], now: str
    ) -> None:
        """Record refused messages (when, where, why, their size and hash; never the payload)."""
        if not refused:
            return
        rows = []
        for index, exc in refused:
            topic, payload = items[index]
            rows.append(
                {
                    "received_at": now,
                    "topic": topic[:200],
                    "reason": f"{exc.kind}: {exc.detail}"[:300],
                    "bytes": len(payload),
                    "sha256": hashlib.sha256(payload).hexdigest(),
                }
            )
        conn.execute(dead_letters.insert(), rows)

    def prune(self, now: dt.datetime | None = None) -> int:
        """Forget message ids, retracted sessions' hashes and sequence gaps older than ``dedup_days``
        (and a device's gaps beyond :data:`GAPS_PER_DEVICE`), and dead letters older than
        ``dead_letter_days``; returns the message ids forgotten."""
        now = now or dt.datetime.now(dt.timezone.utc)
        cutoff = (now.date() - dt.timedelta(days=self.dedup_days)).isoformat()
        letters = (now - dt.timedelta(days=self.dead_letter_days)).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            conn.execute(retracted.delete().where(retracted.c.received_day < cutoff))
            conn.execute(dead_letters.delete().where(dead_letters.c.received_at < letters))
            prune_gaps(conn, cutoff, GAPS_PER_DEVICE)
            return int(conn.execute(messages.delete().where(messages.c.received_day < cutoff)).rowcount)
