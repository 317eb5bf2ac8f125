"""What the dashboard may show: cells of the aggregate views after complementary suppression.

Primary suppression is in the views (no cell with fewer than k sessions). A shown total could
still reveal a hidden cell by subtraction: a site's day minus its rooms' shown days is the hidden
rooms' sum. So for every parent and its children that the dashboard can show (room within site,
site within clinic, day within week, day within month), the sessions a parent holds beyond its
shown children must be none or at least k; otherwise the smallest shown child is hidden too, and
so on until every relation holds. Every number the dashboard shows, or that a difference of shown
numbers yields, then aggregates at least k sessions. Weeks and months are not nested; their
overlap is made of days, which are themselves protected.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from hub.views import GRAINS, LEVELS, SUMS, view_name

logger = logging.getLogger(__name__)

Key = tuple[str, ...]  # dims..., period


@dataclass
class Cell:
    level: str
    grain: str
    key: Key
    sessions: int
    sums: dict[str, float]

    @property
    def period(self) -> str:
        return self.key[-1]


@dataclass
class Lattice:
    """Shown cells per (level, grain), after complementary suppression."""

    k: int
    grains: tuple[str, ...]
    cells: dict[tuple[str, str], dict[Key, Cell]] = field(default_factory=dict)
    hidden_secondary: int = 0

    def table(self, level: str, grain: str) -> list[Cell]:
        return sorted(self.cells.get((level, grain), {}).values(), key=lambda c: c.key)


def week_of(day: str) -> str:
    d = dt.date.fromisoformat(day)
    return (d - dt.timedelta(days=d.weekday())).isoformat()


def _parents(level: str, grain: str, key: Key, grains: tuple[str, ...]) -> Iterable[tuple[tuple[str, str], Key]]:
    dims, period = key[:-1], key[-1]
    if level == "room":
        yield ("site", grain), (dims[0], period)
    elif level == "site":
        yield ("clinic", grain), (period,)
    if grain == "day":
        if "week" in grains:
            yield (level, "week"), (*dims, week_of(period))
        if "month" in grains:
            yield (level, "month"), (*dims, period[:7])


def read_lattice(conn: sa.Connection, grains: tuple[str, ...] = GRAINS) -> Lattice:
    """Every cell of the aggregate views for ``grains``, then complementary suppression."""
    k = int(conn.execute(sa.text("SELECT k FROM hub_settings WHERE id = 1")).scalar_one())
    lattice = Lattice(k=k, grains=grains)
    for level, dims in LEVELS.items():
        for grain in grains:
            rows = conn.execute(sa.text(f"SELECT * FROM {view_name(level, grain)}")).mappings()  # noqa: S608 - fixed names
            cells = {}
            for row in rows:
                key = (*(str(row[d]) for d in dims), str(row["period"]))
                cells[key] = Cell(level, grain, key, int(row["sessions"]), {s: float(row[s] or 0) for s in SUMS})
            lattice.cells[(level, grain)] = cells
    _complementary(lattice)
    return lattice


def _complementary(lattice: Lattice) -> None:
    changed = True
    while changed:
        changed = False
        children: dict[tuple[tuple[str, str], Key], list[Cell]] = {}
        for (level, grain), cells in lattice.cells.items():
            for cell in cells.values():
                for relation in _parents(level, grain, cell.key, lattice.grains):
                    children.setdefault(relation, []).append(cell)
        for (where, parent_key), kids in children.items():
            parent = lattice.cells.get(where, {}).get(parent_key)
            if parent is None:
                continue
            remainder = parent.sessions - sum(c.sessions for c in kids)
            if 0 < remainder < lattice.k:
                smallest = min(kids, key=lambda c: (c.sessions, c.key))
                del lattice.cells[(smallest.level, smallest.grain)][smallest.key]
                lattice.hidden_secondary += 1
                changed = True
                break  # relations changed; recompute them


def check(lattice: Lattice) -> list[str]:
    """Violations of the two rules (empty when the lattice is safe to show); used by the tests."""
    problems = [
        f"{c.level}/{c.grain} {c.key}: {c.sessions} sessions < k={lattice.k}"
        for cells in lattice.cells.values()
        for c in cells.values()
        if c.sessions < lattice.k
    ]
    totals: dict[tuple[tuple[str, str], Key], int] = {}
    for (level, grain), cells in lattice.cells.items():
        for cell in cells.values():
            for relation in _parents(level, grain, cell.key, lattice.grains):
                totals[relation] = totals.get(relation, 0) + cell.sessions
    for (where, key), shown in totals.items():
        parent = lattice.cells.get(where, {}).get(key)
        if parent is not None and 0 < parent.sessions - shown < lattice.k:
            problems.append(f"{where} {key}: {parent.sessions - shown} sessions derivable by subtraction")
    return problems
