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

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from contract.classes import CLASSES
from contract.payload import Summary
from hub.measures import SHARES
from hub.messages import Contended, Message, Refused, Result, day_of
from hub.multirow import among, chunks, rows_in
from hub.periods import month_of, week_of
from hub.retraction import not_retracted, retract, session_hash
from hub.sequence import prune_gaps, sequence_devices
from hub.store import (
    FLAGS,
    SUMS,
    device_name,
    devices,
    messages,
    rolled_up,
    sessions,
)

logger = logging.getLogger(__name__)

__all__ = ["Contended", "Message", "Refused", "Result", "day_of", "prune_gaps", "session_hash", "store", "sums"]


def store(conn: sa.Connection, batch: Sequence[Message], now: str) -> Result:
    """Store ``batch`` in the open transaction of ``conn``; refused messages are returned, not raised.

    Raises:
        Contended: a session part was sealed meanwhile; roll back and try the batch again.
    """
    result = Result()
    new = _new_messages(conn, [m for m in batch if m.sequenced is not None], now, result)
    fresh = _open_months(conn, new, result)
    fresh, parts = _same_room(conn, fresh, result)
    accepted = sequence_devices(conn, fresh, [m for m in batch if m.status is not None], now, result)
    accepted = not_retracted(conn, accepted, result)
    _add_to_sessions(conn, [m for m in accepted if m.summary is not None], parts)
    retract(conn, [m for m in accepted if m.retract is not None], now)
    kept = {m.index for m in accepted}
    late_refusals = [m for m in new if m.index not in kept]
    for chunk in chunks([m._body.message_id for m in late_refusals]):
        conn.execute(messages.delete().where(among(conn, messages.c.message_id, chunk)))
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
        new.update(rows_in(conn, messages, rows, "ON CONFLICT DO NOTHING RETURNING message_id").scalars())
    fresh = []
    for m in summaries:
        if first[m._body.message_id] is m and m._body.message_id in new:
            fresh.append(m)
        else:
            result.duplicates.append(m)
    return fresh


def _open_months(conn: sa.Connection, fresh: list[Message], result: Result) -> list[Message]:
    months = sorted({month_of(m.day) for m in fresh if m.summary is not None})
    closed = set(conn.execute(sa.select(rolled_up.c.month).where(among(conn, rolled_up.c.month, months))).scalars())
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
    for chunk in chunks(ids):
        for row in conn.execute(sa.select(*columns).where(among(conn, c.session_id, chunk))):
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


def sums(s: Summary) -> dict[str, float]:
    """What one summary adds to its session's row."""
    windows = s.span.windows
    add: dict[str, float] = {
        "windows": windows,
        "seconds": max(s.span.end_s - s.span.start_s, 0.0),
        "prob_windows": windows if s.emotion.probs is not None else 0,
    }
    for share in SHARES:
        value = share.of(s)
        add[share.column] = value * windows if value is not None else 0.0
    probs = s.emotion.probs.model_dump() if s.emotion.probs is not None else {}
    for c in CLASSES:
        add[f"p_{c}"] = probs.get(c, 0.0) * windows
    for f in FLAGS:
        add[f"flag_{f}"] = s.quality.get(f, 0)  # type: ignore[call-overload]
    return add


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
    if len(rows_in(conn, sessions, [rows[sid] for sid in sorted(rows)], tail).all()) != len(rows):
        raise Contended("a release sealed a session part meanwhile")
