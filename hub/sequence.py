"""Each device's sequence: identity, the next expected number, gaps opened and closed, devices
locked in id order."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from hub.messages import Message, Refused, Result
from hub.multirow import among, chunks, rows_in, update_rows
from hub.store import (
    devices,
    gaps,
)

logger = logging.getLogger(__name__)


def sequence_devices(
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
        rows_in(conn, devices, new_rows, "ON CONFLICT DO NOTHING")
    wanted = sorted(set(firsts) | {m.device_id for m in result.duplicates})
    rows: dict[str, dict[str, Any]] = {}
    for chunk in chunks(wanted):
        query = sa.select(devices).where(among(conn, devices.c.device_id, chunk)).order_by(devices.c.device_id)
        rows.update((r["device_id"], dict(r)) for r in conn.execute(query.with_for_update()).mappings())
    held = gaps_for(conn, summaries, rows)
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
        follow(row, m._body.seq, held[m.device_id], gone, now, result, counted=m.summary is not None)
        accepted.append(m)
    for m in result.duplicates:
        if m.device_id in rows:
            rows[m.device_id]["duplicates"] += 1
            touched.add(m.device_id)
    write_devices(conn, [rows[d] for d in sorted(touched)])
    for ids in chunks(gone):
        conn.execute(gaps.delete().where(among(conn, gaps.c.id, ids)))
    new_gaps = [
        {k: g[k] for k in ("device_id", "from_seq", "to_seq", "noticed_at")}
        for d in sorted(held)
        for g in held[d]
        if g.get("id") is None
    ]
    if new_gaps:
        conn.execute(gaps.insert(), new_gaps)
    return accepted


def gaps_for(
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


def follow(
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


DEVICE_FIELDS = [c.name for c in devices.columns if c.name not in ("device_id", "site", "room")]


def write_devices(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        update_rows(conn, devices, "device_id", [{k: r[k] for k in ["device_id", *DEVICE_FIELDS]} for r in rows])
