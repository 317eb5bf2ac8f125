"""Withdrawn sessions: summaries of a retracted session refused, and a retraction applied to
what is not yet released."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

import sqlalchemy as sa

from hub.messages import Message, Refused, Result
from hub.multirow import among, chunks
from hub.store import (
    released_cells,
    retracted,
    retractions,
    sessions,
)

logger = logging.getLogger(__name__)


def session_hash(session_id: str) -> str:
    """What the hub keeps of a retracted session's id."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def not_retracted(conn: sa.Connection, accepted: list[Message], result: Result) -> list[Message]:
    """Drop summaries and events of sessions retracted before (read after the devices were locked, so
    a retraction of the same room committed meanwhile is seen); they keep their place in the sequence."""
    hashes = {m.index: session_hash(m._body.session_id) for m in accepted if m.retract is None and m.sequenced}
    gone: set[str] = set()
    for chunk in chunks(sorted(set(hashes.values()))):
        query = sa.select(retracted.c.session_hash).where(among(conn, retracted.c.session_hash, chunk))
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


def shown_holds(conn: sa.Connection, part: Any) -> bool:
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


def retract(conn: sa.Connection, retracts: list[Message], now: str) -> None:
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
        kept = [r for r in rows if r.sealed_in is not None and shown_holds(conn, r)]
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
