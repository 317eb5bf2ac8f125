"""What the trends pages draw: one series per site or room (never pooled across them, so a room held
back in one period cannot make a false jump in another), the cells not shown marked in place, and how
fresh the released numbers are.

Which cells are "not shown" is worked out from what the page may know without the data: every
period released for the grain, and every place the hub knows from its appliances. A place with no
shown cell in a released period is marked "not shown" whether it had no session or was held back, so
the mark reveals nothing a released number does not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from contract.classes import CLASS_COLOURS, CLASSES
from hub.dashboard import Filters, Row
from hub.periods import Grain, end_of, month_of
from hub.store import devices, releases


def period_label(period: str, grain: str) -> str:
    """A period as a person reads it: "Mon 21 Sep 2026", "w/c 21 Sep 2026", "Nov 2026"."""
    if grain == "month":
        return dt.date.fromisoformat(f"{period}-01").strftime("%b %Y")
    day = dt.date.fromisoformat(period)
    return day.strftime("w/c %d %b %Y" if grain == "week" else "%a %d %b %Y")


@dataclass(frozen=True, order=True)
class Scope:
    site: str
    room: str

    @property
    def name(self) -> str:
        return self.site if self.room == "all rooms" else f"{self.site} / {self.room}"


@dataclass
class Trends:
    level: str
    grain: str
    periods: list[str]  # released periods in the filters' range, oldest first
    rows: list[Row]  # the shown cells
    held: list[tuple[str, Scope]] = field(default_factory=list)  # (period, scope) released but not shown
    newest: str | None = None  # the newest released period of the grain (any range)

    def chart(self) -> dict[str, Any]:
        """The chart's data: per scope and class, the share per period (None where not shown) and the
        sessions behind it; the clinic level is one scope, drawn stacked."""
        scopes = sorted({Scope(r.site, r.room) for r in self.rows} | {s for _, s in self.held}, key=lambda s: s.name)
        at = {(r.period, Scope(r.site, r.room)): r for r in self.rows}
        series = []
        for scope in scopes:
            cells = [at.get((p, scope)) for p in self.periods]
            series.append(
                {
                    "name": scope.name,
                    "sessions": [None if c is None else c.sessions for c in cells],
                    "shares": {k: [_pct(None if c is None else c.emotions[k]) for c in cells] for k in CLASSES},
                }
            )
        totals = {k: sum(r.emotions[k] or 0.0 for r in self.rows) for k in CLASSES}
        return {
            "kind": "stacked" if self.level == "clinic" else "lines",
            "periods": [period_label(p, self.grain) for p in self.periods],
            "series": series,
            "classes": list(CLASSES),
            "colours": CLASS_COLOURS,
            "class": max(CLASSES, key=lambda k: totals[k]) if self.rows else CLASSES[0],
        }

    def table(self) -> list[tuple[Row | None, str, Scope]]:
        """The table's lines, newest period last: a shown row, or None where the cell is not shown."""
        lines: list[tuple[Row | None, str, Scope]] = [(r, r.period, Scope(r.site, r.room)) for r in self.rows]
        lines += [(None, p, s) for p, s in self.held]
        return sorted(lines, key=lambda x: (x[1], x[2].name))

    def next_release(self, today: dt.date, delay_days: int) -> str:
        """When the period in progress appears (the hourly release run, once it has ended)."""
        current = today.isoformat() if self.grain == "day" else None
        if self.grain == "week":
            current = (today - dt.timedelta(days=today.weekday())).isoformat()
        if self.grain == "month":
            current = month_of(today.isoformat())
        if current is None:
            return ""
        grain: Grain = self.grain  # type: ignore[assignment]
        due = end_of(current, grain)
        due += dt.timedelta(days=delay_days)
        return (
            f"{period_label(current, self.grain)} is released within an hour of {due.strftime('%a %d %b %Y')} "
            "(after it ends and the appliances' late summaries have had time to arrive)."
        )


def _pct(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def _places(conn: sa.Connection, f: Filters) -> list[Scope]:
    pairs = {(s, r) for s, r in conn.execute(sa.select(devices.c.site, devices.c.room).distinct())}
    if f.site:
        pairs = {(s, r) for s, r in pairs if s == f.site}
    if f.room:
        pairs = {(s, r) for s, r in pairs if r == f.room}
    if f.level == "room":
        return sorted(Scope(s, r) for s, r in pairs)
    if f.level == "site":
        return sorted({Scope(s, "all rooms") for s, _ in pairs})
    return [Scope("all sites", "all rooms")]


def trends(conn: sa.Connection, f: Filters, rows: list[Row]) -> Trends:
    """The trends of ``rows`` (the shown cells the filters select), with the released periods of the
    range and the places' cells not shown in them."""
    width = 7 if f.grain == "month" else 10
    query = sa.select(releases.c.period).where(releases.c.grain == f.grain).distinct()
    newest = conn.execute(sa.select(sa.func.max(releases.c.period)).where(releases.c.grain == f.grain)).scalar()
    if f.start:
        query = query.where(releases.c.period >= f.start[:width])
    if f.end:
        query = query.where(releases.c.period <= f.end[:width])
    periods = sorted(str(p) for (p,) in conn.execute(query))
    shown = {(r.period, Scope(r.site, r.room)) for r in rows}
    held = [(p, s) for p in periods for s in _places(conn, f) if (p, s) not in shown]
    return Trends(f.level, f.grain, periods, rows, held, None if newest is None else str(newest))
