"""Storing a batch of validated messages in one transaction, with a few statements per batch.

The order of the steps is the order in which rows are locked, the same in every worker, so workers
sharing the stream (``$share/...``) rarely wait on each other and deadlock only by chance (the
database then aborts one batch, which is tried again):

1. message ids: one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the ids it returns are new, the
   others were stored before (by this or another worker, committed or about to be: PostgreSQL makes
   the insert wait for the other transaction), so de-duplication stays exact under batching;
2. months already rolled up (their summaries are refused);
3. sessions' parts, read to check that a session stays in its room and to pick the open part;
4. devices, locked in id order (``FOR UPDATE`` on PostgreSQL): identity, sequence, gaps;
5. the sessions' sums, one multi-row upsert adding each session's windows to its open part. A part
   sealed by a release between step 3 and 5 is not added to (``WHERE sealed_in IS NULL``); the batch
   is then tried again and goes to a new part.

A refused message leaves nothing behind: its id is removed again and it adds to no device or session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from contract.classes import CLASSES
from contract.payload import Event, Retract, Status, Summary
from hub.periods import month_of, week_of
from hub.store import (
    FLAGS,
    SUMS,
    device_key,
    device_name,
    devices,
    gaps,
    messages,
    released_cells,
    retracted,
    retractions,
    rolled_up,
    sessions,
)

logger = logging.getLogger(__name__)

CHUNK = 400  # rows per multi-row statement (well inside SQLite's and PostgreSQL's parameter limits)
T = TypeVar("T")


class Refused(Exception):  # noqa: N818 - a message refused, not a failure of the hub
    """A message that is set aside: ``kind`` is the metric's reason label, ``detail`` the log's."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class Contended(Exception):  # noqa: N818 - a state, tried again
    """A release sealed a session part while the batch was being stored: the batch is tried again."""


@dataclass
class Message:
    """One validated message of a batch; ``index`` is its place in the batch."""

    index: int
    topic: str
    site: str
    room: str
    summary: Summary | None = None
    status: Status | None = None
    event: Event | None = None  # followed in the device's sequence; nothing of it is kept
    retract: Retract | None = None

    @property
    def device_id(self) -> str:
        """The hub's key of the publishing device: ``<site>/<room>/<device id>``. The site and room
        are the topic's, which the broker's per-room ACL lets only that room's appliance write; so a
        device is known by the broker identity, never by whoever named its id first (one room
        naming another's device id makes a device of its own room, and blocks nothing)."""
        body = self.summary or self.status or self.event or self.retract
        if body is None:  # pragma: no cover - a Message is built with one body
            raise ValueError("a message without a body")
        return device_key(self.site, self.room, body.device_id)

    @property
    def sequenced(self) -> Summary | Event | Retract | None:
        """The body of a message that takes a place in its device's sequence (all but statuses)."""
        return self.summary or self.event or self.retract

    @property
    def day(self) -> str:
        return day_of(self._summary.span.started_at)

    @property
    def _body(self) -> Summary | Event | Retract:
        if self.sequenced is None:  # pragma: no cover - statuses take no place in the sequence
            raise ValueError("a status has no sequence")
        return self.sequenced

    @property
    def _summary(self) -> Summary:
        if self.summary is None:  # pragma: no cover - only summaries have days
            raise ValueError("a status has no day")
        return self.summary


@dataclass
class Result:
    """What happened to each message of a batch (by index), and what the metrics count."""

    stored: list[Message] = field(default_factory=list)
    duplicates: list[Message] = field(default_factory=list)
    refused: list[tuple[int, Refused]] = field(default_factory=list)
    missing: int = 0
    late: int = 0
    rooms_online: int | None = None


def day_of(iso: str) -> str:
    """The UTC day of an ISO 8601 time."""
    stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc)
    return stamp.date().isoformat()


def _chunks(rows: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def _rows_in(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], tail: str) -> Any:
    """``INSERT INTO table ... <tail>`` for many rows in one short statement: on PostgreSQL one array
    per column (``unnest``: the statement's text stays the same, whatever the number of rows); on
    SQLite one execution per row."""
    columns = list(rows[0])
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=conn.dialect)}[])" for c in columns)
        statement = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) {tail}"  # noqa: S608
        return conn.execute(sa.text(statement), {c: [r[c] for r in rows] for c in columns})
    values = ", ".join(f":{c}" for c in columns)
    statement = f"INSERT INTO {table.name} ({names}) VALUES ({values}) {tail}"  # noqa: S608
    if "RETURNING" not in tail:
        return conn.execute(sa.text(statement), rows)
    returned = [conn.execute(sa.text(statement), row).all() for row in rows]
    return _Rows([r for rows_ in returned for r in rows_])


def _among(conn: sa.Connection, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``: on PostgreSQL ``= ANY(array)``, one parameter whatever the count."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


def _update_rows(conn: sa.Connection, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    """``UPDATE table SET ... WHERE key = ...`` for many rows: one statement on PostgreSQL."""
    columns = [c for c in rows[0] if c != key]
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=conn.dialect)}[])" for c in [key, *columns])
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        statement = (
            f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS u({key}, {', '.join(columns)}) "  # noqa: S608
            f"WHERE {table.name}.{key} = u.{key}"
        )
        conn.execute(sa.text(statement), {c: [r[c] for r in rows] for c in [key, *columns]})
        return
    update = (
        table.update()
        .where(table.c[key] == sa.bindparam(f"b_{key}"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )
    conn.execute(update, [{f"b_{k}": v for k, v in row.items()} for row in rows])


class _Rows:
    """Rows returned by several SQLite statements, read like one result."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def all(self) -> list[Any]:
        return self.rows

    def scalars(self) -> list[Any]:
        return [r[0] for r in self.rows]


def store(conn: sa.Connection, batch: Sequence[Message], now: str) -> Result:
    """Store ``batch`` in the open transaction of ``conn``; refused messages are returned, not raised.

    Raises:
        Contended: a session part was sealed meanwhile; roll back and try the batch again.
    """
    result = Result()
    new = _new_messages(conn, [m for m in batch if m.sequenced is not None], now, result)
    fresh = _open_months(conn, new, result)
    fresh, parts = _same_room(conn, fresh, result)
    accepted = _sequence(conn, fresh, [m for m in batch if m.status is not None], now, result)
    accepted = _not_retracted(conn, accepted, result)
    _add_to_sessions(conn, [m for m in accepted if m.summary is not None], parts)
    _retract(conn, [m for m in accepted if m.retract is not None], now)
    kept = {m.index for m in accepted}
    late_refusals = [m for m in new if m.index not in kept]
    for chunk in _chunks([m._body.message_id for m in late_refusals]):
        conn.execute(messages.delete().where(_among(conn, messages.c.message_id, chunk)))
    result.stored += accepted
    if any(m.status is not None for m in batch):
        result.rooms_online = conn.execute(
            sa.select(sa.func.count()).select_from(devices).where(devices.c.state == "online")
        ).scalar_one()
    return result


def _new_messages(conn: sa.Connection, summaries: list[Message], now: str, result: Result) -> list[Message]:
    """Sequenced messages whose message id no transaction stored before; the others are duplicates."""
    first: dict[str, Message] = {}
    for m in summaries:
        first.setdefault(m._body.message_id, m)
    new: set[str] = set()
    ids = sorted(first)
    if ids:
        rows = [{"message_id": i, "received_day": now[:10]} for i in ids]
        new.update(_rows_in(conn, messages, rows, "ON CONFLICT DO NOTHING RETURNING message_id").scalars())
    fresh = []
    for m in summaries:
        if first[m._body.message_id] is m and m._body.message_id in new:
            fresh.append(m)
        else:
            result.duplicates.append(m)
    return fresh


def _open_months(conn: sa.Connection, fresh: list[Message], result: Result) -> list[Message]:
    months = sorted({month_of(m.day) for m in fresh if m.summary is not None})
    closed = set(conn.execute(sa.select(rolled_up.c.month).where(_among(conn, rolled_up.c.month, months))).scalars())
    if not closed:
        return fresh
    kept = []
    for m in fresh:
        month = month_of(m.day) if m.summary is not None else ""
        if month in closed:
            detail = f"month {month} is rolled up: its sessions were deleted after release"
            result.refused.append((m.index, Refused("closed", detail)))
        else:
            kept.append(m)
    return kept


@dataclass(frozen=True)
class _Part:
    part: int
    site: str
    room: str
    sealed_in: int | None
    device: str | None  # None on rows from before the hub recorded it


def _same_room(
    conn: sa.Connection, fresh: list[Message], result: Result
) -> tuple[list[Message], dict[str, list[_Part]]]:
    """Summaries whose session is unknown, or known in their room from their device; every session's
    parts. A session belongs to the one device that published it first."""
    parts: dict[str, list[_Part]] = defaultdict(list)
    ids = sorted({m._body.session_id for m in fresh})
    c = sessions.c
    columns = (c.session_id, c.part, c.site, c.room, c.sealed_in, c.device_id)
    for chunk in _chunks(ids):
        for row in conn.execute(sa.select(*columns).where(_among(conn, c.session_id, chunk))):
            parts[row.session_id].append(_Part(row.part, row.site, row.room, row.sealed_in, row.device_id))
    owner = {
        sid: (p[0].site, p[0].room, next((x.device for x in p if x.device is not None), None))
        for sid, p in parts.items()
    }
    kept = []
    for m in fresh:
        sid = m._body.session_id
        site, room, device = owner.setdefault(sid, (m.site, m.room, m.device_id))
        if (site, room) != (m.site, m.room):
            result.refused.append((m.index, Refused("identity", f"session {sid} belongs to {site}/{room}")))
        elif device is not None and device != m.device_id:
            detail = f"session {sid} belongs to device {device_name(device)} of {site}/{room}"
            result.refused.append((m.index, Refused("identity", detail)))
        else:
            kept.append(m)
    return kept, parts


def _sequence(
    conn: sa.Connection, summaries: list[Message], statuses: list[Message], now: str, result: Result
) -> list[Message]:
    """Lock the devices, check each message is its device's room's, follow the sequence (gaps, late
    summaries filling them), apply statuses; the summaries accepted, in arrival order."""
    arriving = sorted(summaries + statuses, key=lambda m: m.index)
    firsts: dict[str, Message] = {}
    for m in arriving:
        firsts.setdefault(m.device_id, m)
    if firsts:
        new_rows = [{"device_id": d, "site": firsts[d].site, "room": firsts[d].room} for d in sorted(firsts)]
        _rows_in(conn, devices, new_rows, "ON CONFLICT DO NOTHING")
    wanted = sorted(set(firsts) | {m.device_id for m in result.duplicates})
    rows: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(wanted):
        query = sa.select(devices).where(_among(conn, devices.c.device_id, chunk)).order_by(devices.c.device_id)
        rows.update((r["device_id"], dict(r)) for r in conn.execute(query.with_for_update()).mappings())
    held = _gaps_for(conn, summaries, rows)
    gone: list[int] = []
    touched: set[str] = set()
    accepted = []
    for m in arriving:
        row = rows[m.device_id]
        if (row["site"], row["room"]) != (m.site, m.room):
            detail = f"device {m.device_id} belongs to {row['site']}/{row['room']}"
            result.refused.append((m.index, Refused("identity", detail)))
            continue
        touched.add(m.device_id)
        if m.status is not None:
            st = m.status
            row.update(
                state=st.state,
                session_state=st.session,
                degraded=",".join(st.degraded),
                outbox=st.outbox,
                calibrated_at=st.calibrated_at,
                last_status_at=st.ts,
            )
            result.stored.append(m)
            continue
        _follow(row, m._body.seq, held[m.device_id], gone, now, result, counted=m.summary is not None)
        accepted.append(m)
    for m in result.duplicates:
        if m.device_id in rows:
            rows[m.device_id]["duplicates"] += 1
            touched.add(m.device_id)
    _write_devices(conn, [rows[d] for d in sorted(touched)])
    for ids in _chunks(gone):
        conn.execute(gaps.delete().where(_among(conn, gaps.c.id, ids)))
    new_gaps = [
        {k: g[k] for k in ("device_id", "from_seq", "to_seq", "noticed_at")}
        for d in sorted(held)
        for g in held[d]
        if g.get("id") is None
    ]
    if new_gaps:
        conn.execute(gaps.insert(), new_gaps)
    return accepted


def _gaps_for(
    conn: sa.Connection, sequenced: list[Message], rows: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The open gaps a late message of this batch may fill: for each one, the gap holding its seq
    (gaps never overlap, so it is the one starting last at or before it), found through the index,
    never by reading a device's every gap."""
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[int] = set()
    for m in sequenced:
        row = rows.get(m.device_id)
        if row is None or row["last_seq"] is None or m._body.seq > row["last_seq"]:
            continue
        gap = (
            conn.execute(
                sa.select(gaps)
                .where(gaps.c.device_id == m.device_id, gaps.c.from_seq <= m._body.seq)
                .order_by(gaps.c.from_seq.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if gap is not None and gap["to_seq"] >= m._body.seq and gap["id"] not in seen:
            seen.add(gap["id"])
            held[m.device_id].append(dict(gap))
    return held


def prune_gaps(conn: sa.Connection, before: str, most_per_device: int) -> int:
    """Forget gaps noticed before ``before`` (ISO time), and all but a device's newest
    ``most_per_device``: what they miss stays counted in the device's ``missing``; a summary that
    still arrives for one is stored as late without filling it."""
    gone = int(conn.execute(gaps.delete().where(gaps.c.noticed_at < before)).rowcount)
    crowded = conn.execute(
        sa.select(gaps.c.device_id).group_by(gaps.c.device_id).having(sa.func.count() > most_per_device)
    ).scalars()
    for device in list(crowded):
        keep = (
            sa.select(gaps.c.id)
            .where(gaps.c.device_id == device)
            .order_by(gaps.c.from_seq.desc())
            .limit(most_per_device)
            .scalar_subquery()
        )
        gone += int(conn.execute(gaps.delete().where(gaps.c.device_id == device, gaps.c.id.not_in(keep))).rowcount)
    return gone


def _follow(
    row: dict[str, Any],
    seq: int,
    held: list[dict[str, Any]],
    gone: list[int],
    now: str,
    r: Result,
    *,
    counted: bool = True,
) -> None:
    """One message's place in its device's sequence: a gap before it, or a late one filling a gap.
    Summaries are ``counted``; events and retractions only hold their place."""
    last = row["last_seq"]
    if counted:
        row["summaries"] += 1
        row["last_summary_at"] = now
    if last is None or seq > last:
        if last is not None and seq > last + 1:
            held.append({"device_id": row["device_id"], "from_seq": last + 1, "to_seq": seq - 1, "noticed_at": now})
            row["missing"] += seq - last - 1
            r.missing += seq - last - 1
            logger.warning("%s: summaries %d-%d missing", row["device_id"], last + 1, seq - 1)
        row["last_seq"] = seq
        return
    r.late += 1
    gap = next((g for g in held if g["from_seq"] <= seq <= g["to_seq"]), None)
    if gap is None:
        return
    held.remove(gap)
    if gap.get("id") is not None:
        gone.append(gap["id"])
    for lo, hi in ((gap["from_seq"], seq - 1), (seq + 1, gap["to_seq"])):
        if lo <= hi:
            held.append({"device_id": row["device_id"], "from_seq": lo, "to_seq": hi, "noticed_at": gap["noticed_at"]})
    row["missing"] = max(row["missing"] - 1, 0)


_DEVICE_FIELDS = [c.name for c in devices.columns if c.name not in ("device_id", "site", "room")]


def _write_devices(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        _update_rows(conn, devices, "device_id", [{k: r[k] for k in ["device_id", *_DEVICE_FIELDS]} for r in rows])


def sums(s: Summary) -> dict[str, float]:
    """What one summary adds to its session's row."""
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
    return add


def session_hash(session_id: str) -> str:
    """What the hub keeps of a retracted session's id."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def _not_retracted(conn: sa.Connection, accepted: list[Message], result: Result) -> list[Message]:
    """Drop summaries and events of sessions retracted before (read after the devices were locked, so
    a retraction of the same room committed meanwhile is seen); they keep their place in the sequence."""
    hashes = {m.index: session_hash(m._body.session_id) for m in accepted if m.retract is None and m.sequenced}
    gone: set[str] = set()
    for chunk in _chunks(sorted(set(hashes.values()))):
        query = sa.select(retracted.c.session_hash).where(_among(conn, retracted.c.session_hash, chunk))
        gone.update(conn.execute(query).scalars())
    if not gone:
        return accepted
    kept = []
    for m in accepted:
        if hashes.get(m.index) in gone:
            result.refused.append((m.index, Refused("retracted", "its session was erased by its room")))
        else:
            kept.append(m)
    return kept


def _shown_holds(conn: sa.Connection, part: Any) -> bool:
    """Whether some released cell holds this sealed part (its numbers include it)."""
    c = released_cells.c
    period = sa.or_(
        sa.and_(c.grain == "day", c.period == part.day),
        sa.and_(c.grain == "week", c.period == part.week),
        sa.and_(c.grain == "month", c.period == part.month),
    )
    scope = sa.or_(
        c.level == "clinic",
        sa.and_(c.level == "site", c.site == part.site),
        sa.and_(c.level == "room", c.site == part.site, c.room == part.room),
    )
    query = sa.select(c.id).where(c.release_id >= part.sealed_in, period, scope).limit(1)
    return conn.execute(query).first() is not None


def _retract(conn: sa.Connection, retracts: list[Message], now: str) -> None:
    """Drop each retracted session from everything no released cell shows: its open parts, and its
    sealed parts that every release held back. Parts that a released cell holds stay, for the privacy
    rule's sake (removing them would let that cell be differenced against later ones), under a new
    random id that nothing links to the room's session; so a coarser period released later (the month
    of a released week) still counts them. What changed is recorded without the session."""
    for m in retracts:
        sid = m._body.session_id
        rows = conn.execute(
            sa.select(
                sessions.c.part,
                sessions.c.sealed_in,
                sessions.c.site,
                sessions.c.room,
                sessions.c.day,
                sessions.c.week,
                sessions.c.month,
            ).where(sessions.c.session_id == sid)
        ).all()
        kept = [r for r in rows if r.sealed_in is not None and _shown_holds(conn, r)]
        gone = [r.part for r in rows if r not in kept]
        if gone:
            conn.execute(sessions.delete().where(sessions.c.session_id == sid, sessions.c.part.in_(gone)))
        if kept:
            conn.execute(sessions.update().where(sessions.c.session_id == sid).values(session_id=str(uuid.uuid4())))
        key = session_hash(sid)
        if conn.execute(sa.select(retracted.c.session_hash).where(retracted.c.session_hash == key)).first() is None:
            conn.execute(retracted.insert().values(session_hash=key, received_day=now[:10]))
        months = ",".join(sorted({r.month for r in kept}))
        conn.execute(
            retractions.insert().values(
                received_day=now[:10],
                site=m.site,
                room=m.room,
                dropped_parts=len(gone),
                released_parts=len(kept),
                released_months=months[:200],
            )
        )
        if kept:
            logger.warning(
                "a session of %s/%s was retracted after release (%s): released cells stay as they are",
                m.site,
                m.room,
                months,
            )
        else:
            logger.info("a session of %s/%s was retracted before any release showed it: dropped", m.site, m.room)


def _add_to_sessions(conn: sa.Connection, accepted: list[Message], parts: dict[str, list[_Part]]) -> None:
    """One upsert per chunk: each session's sums added to its open part, or a new part."""
    rows: dict[str, dict[str, Any]] = {}
    for m in accepted:
        s = m._summary
        add = sums(s)
        row = rows.get(s.session_id)
        if row is None:
            known = parts.get(s.session_id, [])
            open_part = next((p.part for p in known if p.sealed_in is None), None)
            part = open_part if open_part is not None else max((p.part for p in known), default=-1) + 1
            day = m.day
            rows[s.session_id] = {
                "session_id": s.session_id,
                "part": part,
                "site": m.site,
                "room": m.room,
                "device_id": m.device_id,
                "day": day,
                "week": week_of(day),
                "month": month_of(day),
                **add,
            }
        else:
            for k, v in add.items():
                row[k] += v
    if not rows:
        return
    added = ", ".join(f"{k} = sessions.{k} + excluded.{k}" for k in SUMS)
    tail = f"ON CONFLICT (session_id, part) DO UPDATE SET {added} WHERE sessions.sealed_in IS NULL RETURNING part"
    if len(_rows_in(conn, sessions, [rows[sid] for sid in sorted(rows)], tail).all()) != len(rows):
        raise Contended("a release sealed a session part meanwhile")
