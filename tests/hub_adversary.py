"""The adversary of the hub's releases, written apart from ``hub.privacy``: it rebuilds which session rows
each released cell holds from the database, checks the released numbers against them, and looks for
any combination of cells that rests on fewer than k contributing sessions or on one dominant session.
Also the simulated clinic that feeds the hub's real ingest."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from hub_helpers import summary

from contract.payload import Retract
from hub.dashboard import Filters, published, select
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.release import Released, policy_for, release_due
from hub.store import SUMS, released_cells, sessions

LEVEL_DIMS = {"clinic": 0, "site": 1, "room": 2}


@dataclass
class Clinic:
    """Rooms sending summaries into a hub's real ingest."""

    engine: sa.Engine
    ingest: Ingest = field(init=False)
    seq: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ingest = Ingest(self.engine, HubMetrics(), max_age_days=3650)

    def send(
        self, site: str, room: str, day: str, session_id: str, label: str = "happy", *, empty: bool = False, n: int = 1
    ) -> None:
        """One summary of ``n`` windows (``empty``: windows without an emotion result)."""
        device = f"{site}-{room}"
        self.seq[device] = self.seq.get(device, 0) + 1
        s = summary(site, room, device, self.seq[device], session_id, day, label=label, windows=n, empty=empty)
        assert self.ingest.handle(f"clinic/v1/{site}/{room}/summary", s.model_dump_json().encode()).result == "stored"

    def retract(self, site: str, room: str, session_id: str) -> None:
        """The room erased ``session_id`` on request: its retraction, in the room's sequence."""
        device = f"{site}-{room}"
        self.seq[device] = self.seq.get(device, 0) + 1
        body = Retract(
            kind="retract",
            message_id=str(uuid.uuid4()),
            seq=self.seq[device],
            site=site,
            room=room,
            device_id=device,
            session_id=session_id,
        )
        assert (
            self.ingest.handle(f"clinic/v1/{site}/{room}/retract", body.model_dump_json().encode()).result == "stored"
        )

    def session(
        self, site: str, room: str, day: str, label: str = "happy", windows: int = 1, *, empty: bool = False
    ) -> str:
        session_id = str(uuid.uuid4())
        for _ in range(windows):
            self.send(site, room, day, session_id, label, empty=empty)
        return session_id


def release(engine: sa.Engine, today: str, finest: str = "day", delay: int = 2) -> list[Released]:
    return release_due(engine, policy_for(engine, finest, delay), dt.date.fromisoformat(today))  # type: ignore[arg-type]


def _weak(rows: list[dict[str, Any]], held: set[int], k: int, dominance: float) -> str | None:
    """Why the adversary learns one client from these rows: fewer than k sessions with an emotion
    result, or one session holding more than ``dominance`` of the windows (analysed or all)."""
    analysed: dict[str, float] = defaultdict(float)
    windows: dict[str, float] = defaultdict(float)
    for i in held:
        analysed[rows[i]["session_id"]] += rows[i]["prob_windows"]
        windows[rows[i]["session_id"]] += rows[i]["windows"]
    contributing = [sid for sid, n in analysed.items() if n > 0]
    if len(contributing) < k:
        return f"{len(contributing)} contributing sessions"
    for share in (analysed, windows):
        total = sum(share.values())
        if total > 0 and max(share.values()) / total > dominance + 1e-9:
            return f"one session holds {max(share.values()) / total:.0%}"
    return None


def exposures(engine: sa.Engine) -> list[str]:
    """What an adversary holding every released cell can single out: fewer than k contributing sessions,
    or one dominant session (empty: nothing)."""
    with engine.begin() as conn:
        k, dominance = conn.execute(sa.text("SELECT k, dominance FROM hub_settings")).one()
        rows = [dict(r) for r in conn.execute(sa.select(sessions)).mappings()]
        cells = [dict(r) for r in conn.execute(sa.select(released_cells)).mappings()]
    problems: list[str] = []
    members: list[set[int]] = []
    for c in cells:
        n = LEVEL_DIMS[c["level"]]
        held = {
            i
            for i, r in enumerate(rows)
            if r["sealed_in"] is not None
            and r["sealed_in"] <= c["release_id"]
            and r[c["grain"]] == c["period"]
            and (r["site"], r["room"])[:n] == (c["site"], c["room"])[:n]
        }
        members.append(held)
        # The released numbers are exactly those of the rows the cell holds (no row counted twice or lost).
        ids = {rows[i]["session_id"] for i in held}
        if len(ids) != c["sessions"] or (why := _weak(rows, held, k, dominance)) is not None:
            problems.append(
                f"cell {c['level']}/{c['grain']} {c['period']}: {c['sessions']} sessions, rows say {len(ids)}, "
                f"{why or 'safe'}"
            )
        for s in SUMS:
            if abs(sum(rows[i][s] for i in held) - c[s]) > 1e-6 * max(1.0, abs(c[s])):
                problems.append(f"cell {c['level']}/{c['grain']} {c['period']}: {s} differs from its rows")
    # Any combination of cells has equal coefficients on rows no cell tells apart: groups of rows
    # with the same cells are what the adversary can at best isolate.
    groups: dict[frozenset[int], set[int]] = defaultdict(set)
    for i in range(len(rows)):
        signature = frozenset(j for j, m in enumerate(members) if i in m)
        if signature:
            groups[signature].add(i)
    problems += [
        f"{why} told apart by cells {sorted(sig)}"
        for sig, held in groups.items()
        if (why := _weak(rows, held, k, dominance)) is not None
    ]
    if cells:
        # Linear algebra: no single session row is a combination of released cells...
        a = np.array([[1.0 if i in m else 0.0 for i in range(len(rows))] for m in members])
        rank = np.linalg.matrix_rank(a)
        for i, r in enumerate(rows):
            if np.linalg.matrix_rank(np.vstack([a, np.eye(len(rows))[i]])) == rank:
                problems.append(f"session {r['session_id']} part {r['part']} is a combination of released cells")
        # ...and no difference of two cells rests on fewer than k contributing sessions or on one session.
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                apart = members[x] ^ members[y]
                if apart and (why := _weak(rows, apart, k, dominance)) is not None:
                    problems.append(f"cells {x} and {y} differ by {why}")
    return problems


def csv_rows(engine: sa.Engine, grains: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Every row the CSV export offers, at every level and grain."""
    out = set()
    with engine.connect() as conn:
        shown = published(conn, grains)
    for level in LEVEL_DIMS:
        for grain in grains:
            for row in select(shown, Filters(level, grain, None, None, None, None)):
                out.add((level, grain, *row.csv()))
    return out


def days_between(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
