"""Subscribes to every room's summaries and status and stores what the hub keeps.

One MQTT 5 session with a fixed client id, ``clean_start`` off and a session expiry, so the broker
queues QoS 1 messages while the hub is down. Messages are acknowledged by hand, after their
database transaction commits: a database failure leaves the message unacknowledged and the broker
delivers it again. Duplicates (same ``message_id``) are counted and skipped; a jump in a device's
``seq`` is recorded as a gap, and a late message fills its gap.

Each message is handled on its own: one that is too large, malformed, out of bounds (the contract's
models bound every field), too old or from the future, or not the publishing room's (a device or a
session already known under another site or room) is set aside in ``dead_letters`` with its reason
(never its payload), counted in ``clinic_hub_dead_letters_total{reason}`` and acknowledged; so is
one that fails in any other way except the database being unavailable. Nothing a message carries
can stop ingest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from clinic_common.errors import PublishError
from clinic_common.mqtt import MqttConfig, configure_credentials
from contract.classes import CLASSES
from contract.payload import Status, Summary
from hub.config import HubConfig
from hub.metrics import HubMetrics
from hub.periods import month_of, week_of
from hub.store import FLAGS, dead_letters, devices, gaps, messages, rolled_up, sessions

logger = logging.getLogger(__name__)

QOS = 1
SESSION_EXPIRY_S = 7 * 24 * 3600
# Database errors after which the message is delivered again (the database, not the message, failed).
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
FUTURE_TOLERANCE = dt.timedelta(days=1)


class Refused(Exception):  # noqa: N818 - a message refused, not a failure of the hub
    """A message that is set aside: ``kind`` is the metric's reason label, ``detail`` the log's."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Outcome:
    result: str  # stored | duplicate | invalid
    detail: str = ""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _day(iso: str) -> str:
    stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc)
    return stamp.date().isoformat()


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
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.dedup_days = dedup_days
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
        )

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """Store one message from ``<prefix>/<site>/<room>/(summary|status)``, or set it aside.

        Raises:
            sqlalchemy.exc.OperationalError (or another of ``TRANSIENT``): the database is unavailable;
            the message must be redelivered.
        """
        kind = topic.rsplit("/", 1)[-1]
        started = time.perf_counter()
        try:
            outcome = self._handle(topic, payload)
        except TRANSIENT:
            raise
        except Refused as exc:
            return self._dead_letter(topic, payload, kind, exc.kind, exc.detail)
        except Exception as exc:  # anything else about one message sets it aside; ingest goes on
            logger.exception("a message from %s could not be stored", topic[:200])
            return self._dead_letter(topic, payload, kind, "error", f"{type(exc).__name__}: {exc}")
        (self.metrics.summaries if kind == "summary" else self.metrics.statuses).labels(outcome.result).inc()
        self.metrics.ingest_seconds.observe(time.perf_counter() - started)
        return outcome

    def _handle(self, topic: str, payload: bytes) -> Outcome:
        parts = topic.split("/")
        if len(parts) < 3 or parts[-1] not in ("summary", "status"):
            raise Refused("topic", f"unexpected topic {topic[:200]!r}")
        if len(payload) > self.max_message_bytes:
            raise Refused("too_large", f"{len(payload)} bytes (at most {self.max_message_bytes})")
        site, room, kind = parts[-3], parts[-2], parts[-1]
        try:
            body = json.loads(payload)
            if kind == "summary":
                summary = Summary.model_validate(body)
            else:
                status = Status.model_validate(body)
        except (ValueError, ValidationError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise Refused("malformed", str(exc).splitlines()[0][:200]) from None
        if kind == "status":
            return self._status(site, room, status)
        if (summary.site, summary.room) != (site, room):
            raise Refused("identity", f"payload names {summary.site}/{summary.room}, topic {site}/{room}")
        self._recent(summary)
        return self._summary(summary)

    def _recent(self, s: Summary) -> None:
        """A session that started within ``max_age_days`` and not in the future (by the hub's clock)."""
        stamp = dt.datetime.fromisoformat(s.span.started_at.replace("Z", "+00:00"))
        now = dt.datetime.now(dt.timezone.utc)
        if not now - self.max_age <= stamp <= now + FUTURE_TOLERANCE:
            raise Refused("out_of_range", f"span started at {s.span.started_at}, received {now:%Y-%m-%d}")

    def _dead_letter(self, topic: str, payload: bytes, kind: str, reason: str, detail: str) -> Outcome:
        """Set a refused message aside (when, where, why, its size and hash; never the payload)."""
        with self.engine.begin() as conn:
            conn.execute(
                dead_letters.insert().values(
                    received_at=_now(),
                    topic=topic[:200],
                    reason=f"{reason}: {detail}"[:300],
                    bytes=len(payload),
                    sha256=hashlib.sha256(payload).hexdigest(),
                )
            )
        self.metrics.dead_letters.labels(reason).inc()
        (self.metrics.summaries if kind == "summary" else self.metrics.statuses).labels("invalid").inc()
        logger.warning("set aside a message from %s (%s): %s", topic[:200], reason, detail[:200])
        return Outcome("invalid", f"{reason}: {detail}")

    def _summary(self, s: Summary) -> Outcome:
        with self.engine.begin() as conn:
            seen = conn.execute(sa.select(messages.c.message_id).where(messages.c.message_id == s.message_id)).first()
            if seen is not None:
                conn.execute(
                    devices.update()
                    .where(devices.c.device_id == s.device_id)
                    .values(duplicates=devices.c.duplicates + 1)
                )
                return Outcome("duplicate")
            conn.execute(messages.insert().values(message_id=s.message_id, received_day=_now()[:10]))
            self._sequence(conn, s)
            self._add_to_session(conn, s)
        return Outcome("stored")

    def _sequence(self, conn: sa.Connection, s: Summary) -> None:
        row = conn.execute(sa.select(devices).where(devices.c.device_id == s.device_id)).mappings().first()
        now = _now()
        if row is None:
            conn.execute(
                devices.insert().values(
                    device_id=s.device_id, site=s.site, room=s.room, last_seq=s.seq, summaries=1, last_summary_at=now
                )
            )
            return
        if (row["site"], row["room"]) != (s.site, s.room):
            raise Refused("identity", f"device {s.device_id} belongs to {row['site']}/{row['room']}")
        last = row["last_seq"]
        values: dict[str, Any] = {"summaries": row["summaries"] + 1, "last_summary_at": now}
        if last is None or s.seq > last:
            if last is not None and s.seq > last + 1:
                conn.execute(
                    gaps.insert().values(device_id=s.device_id, from_seq=last + 1, to_seq=s.seq - 1, noticed_at=now)
                )
                values["missing"] = row["missing"] + (s.seq - last - 1)
                self.metrics.missing.inc(s.seq - last - 1)
                logger.warning("%s: summaries %d-%d missing", s.device_id, last + 1, s.seq - 1)
            values["last_seq"] = s.seq
        else:
            self.metrics.late.inc()
            if self._fill_gap(conn, s.device_id, s.seq):
                values["missing"] = max(row["missing"] - 1, 0)
        conn.execute(devices.update().where(devices.c.device_id == s.device_id).values(**values))

    @staticmethod
    def _fill_gap(conn: sa.Connection, device_id: str, seq: int) -> bool:
        """A late summary removes its seq from the gap that held it (splitting the gap)."""
        gap = (
            conn.execute(
                sa.select(gaps).where(gaps.c.device_id == device_id, gaps.c.from_seq <= seq, gaps.c.to_seq >= seq)
            )
            .mappings()
            .first()
        )
        if gap is None:
            return False
        conn.execute(gaps.delete().where(gaps.c.id == gap["id"]))
        for lo, hi in ((gap["from_seq"], seq - 1), (seq + 1, gap["to_seq"])):
            if lo <= hi:
                conn.execute(
                    gaps.insert().values(device_id=device_id, from_seq=lo, to_seq=hi, noticed_at=gap["noticed_at"])
                )
        return True

    @staticmethod
    def _add_to_session(conn: sa.Connection, s: Summary) -> None:
        windows = s.span.windows
        face = s.modalities.face
        voice = s.modalities.voice
        add: dict[str, float] = {
            "windows": windows,
            "seconds": max(s.span.end_s - s.span.start_s, 0.0),
            "face_coverage_sum": (face.coverage * windows) if face else 0.0,
            "voiced_sum": (voice.voiced_ratio * windows) if voice else 0.0,
            "prob_windows": windows if s.emotion.probs is not None else 0,
        }
        probs = s.emotion.probs.model_dump() if s.emotion.probs is not None else {}
        for c in CLASSES:
            add[f"p_{c}"] = probs.get(c, 0.0) * windows
        for f in FLAGS:
            add[f"flag_{f}"] = s.quality.get(f, 0)  # type: ignore[call-overload]
        parts = conn.execute(
            sa.select(sessions.c.site, sessions.c.room, sessions.c.part, sessions.c.sealed_in).where(
                sessions.c.session_id == s.session_id
            )
        ).all()
        if parts and (parts[0].site, parts[0].room) != (s.site, s.room):
            raise Refused("identity", f"session {s.session_id} belongs to {parts[0].site}/{parts[0].room}")
        day = _day(s.span.started_at)
        month = month_of(day)
        if conn.execute(sa.select(rolled_up.c.month).where(rolled_up.c.month == month)).first() is not None:
            raise Refused("closed", f"month {month} is rolled up: its sessions were deleted after release")
        open_part = next((p.part for p in parts if p.sealed_in is None), None)
        if open_part is not None:
            updated = conn.execute(
                sessions.update()
                .where(
                    sessions.c.session_id == s.session_id, sessions.c.part == open_part, sessions.c.sealed_in.is_(None)
                )
                .values(**{k: getattr(sessions.c, k) + v for k, v in add.items()})
            )
            if updated.rowcount == 1:
                return
            # A release sealed the part between the read and the update (PostgreSQL): a new part.
        conn.execute(
            sessions.insert().values(
                session_id=s.session_id,
                part=max((p.part for p in parts), default=-1) + 1,
                site=s.site,
                room=s.room,
                day=day,
                week=week_of(day),
                month=month,
                **add,
            )
        )

    def _status(self, site: str, room: str, st: Status) -> Outcome:
        values = {
            "site": site,
            "room": room,
            "state": st.state,
            "session_state": st.session,
            "degraded": ",".join(st.degraded),
            "outbox": st.outbox,
            "calibrated_at": st.calibrated_at,
            "last_status_at": st.ts,
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(devices.c.site, devices.c.room).where(devices.c.device_id == st.device_id)
            ).first()
            if exists is not None and (exists.site, exists.room) != (site, room):
                raise Refused("identity", f"device {st.device_id} belongs to {exists.site}/{exists.room}")
            if exists is None:
                conn.execute(devices.insert().values(device_id=st.device_id, **values))
            else:
                conn.execute(devices.update().where(devices.c.device_id == st.device_id).values(**values))
            online = conn.execute(
                sa.select(sa.func.count()).select_from(devices).where(devices.c.state == "online")
            ).scalar_one()
        self.metrics.rooms_online.set(online)
        return Outcome("stored")

    def prune(self) -> int:
        """Forget message ids older than ``dedup_days``."""
        cutoff = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=self.dedup_days)).isoformat()
        with self.engine.begin() as conn:
            return int(conn.execute(messages.delete().where(messages.c.received_day < cutoff)).rowcount)


class Subscriber:
    """The MQTT side: a persistent MQTT 5 session, manual acknowledgement after commit."""

    def __init__(self, config: MqttConfig, client_id: str, ingest: Ingest) -> None:
        self.config = config
        self.ingest = ingest
        self.connected = threading.Event()
        self._redeliver = threading.Event()
        self._halt = threading.Event()
        self._watchdog = threading.Thread(target=self._reconnect_after_failures, name="hub-redeliver", daemon=True)
        self.topics = [f"{config.topic_prefix}/+/+/summary", f"{config.topic_prefix}/+/+/status"]
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        configure_credentials(self._client, config)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            self._client.connect_async(
                self.config.host,
                self.config.port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot reach the MQTT broker {self.config.host}:{self.config.port}: {exc}") from exc
        self._client.loop_start()
        self._watchdog.start()

    def stop(self) -> None:
        self._halt.set()
        self._redeliver.set()
        self._client.disconnect()
        self._client.loop_stop()

    def _reconnect_after_failures(self) -> None:
        """After a failed store, reconnect (after a pause) so the broker redelivers what was not acknowledged."""
        delay = 2.0
        while not self._halt.is_set():
            self._redeliver.wait()
            if self._halt.is_set():
                return
            self._redeliver.clear()
            self._halt.wait(delay)
            delay = min(delay * 2, 60.0)
            logger.info("reconnecting to receive unacknowledged messages again")
            try:
                self._client.reconnect()
            except (OSError, ValueError) as exc:
                logger.warning("reconnect failed (%s); paho keeps retrying", exc)
            if not self._redeliver.is_set():
                delay = 2.0

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            logger.error("MQTT broker refused the hub: %s", reason)
            return
        for topic in self.topics:
            client.subscribe(topic, qos=QOS)
        self.connected.set()
        self.ingest.metrics.connected.set(1)
        logger.info("hub connected to %s:%d, subscribed to %s", self.config.host, self.config.port, self.topics)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connected.clear()
        self.ingest.metrics.connected.set(0)
        logger.warning("hub disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.ingest.handle(message.topic, bytes(message.payload))
        except Exception as exc:  # the database (handle sets every bad message aside): never paho's thread
            # Not acknowledged: the broker delivers it again after a reconnect.
            self.ingest.metrics.store_failures.inc()
            logger.error("database failed storing a message from %s (%s); it will be redelivered", message.topic, exc)
            self._redeliver.set()  # MQTT redelivers unacknowledged QoS 1 messages on reconnection
            return
        client.ack(message.mid, message.qos)
