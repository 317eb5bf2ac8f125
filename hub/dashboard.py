"""Page models for the dashboard, built only from the released cells (:mod:`hub.release`) and the
appliances' health. Pages read the rollup ``shown_cells`` (the newest version of each released cell)
through its key: a page's cost follows the cells it shows, not the sessions behind them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from contract.classes import CLASSES
from hub.measures import SHARES
from hub.privacy import Cell
from hub.release import released_cell
from hub.store import FLAGS, device_name, devices, releases, retractions, shown_cells

STALE_STATUS_S = 180
# Room triage (the Rooms page): what makes a room need a look, and what makes it a problem.
CALIBRATION_CHECK_DAYS = 30
CALIBRATION_STALE_DAYS = 90
OUTBOX_CHECK = 10
OUTBOX_PROBLEM = 500


@dataclass
class Published:
    """The newest version of every released cell, per (level, grain): a revision replaces the cells
    that changed with late data and leaves the others as released."""

    k: int
    cells: dict[tuple[str, str], list[Cell]]
    hidden: int  # cells the newest releases hold back

    def table(self, level: str, grain: str) -> list[Cell]:
        return self.cells.get((level, grain), [])


@dataclass(frozen=True)
class Filters:
    level: str  # clinic | site | room
    grain: str
    site: str | None
    room: str | None
    start: str | None
    end: str | None
    problem: str | None = None  # filters that cannot select anything, in plain words (nothing is shown)


def published(conn: sa.Connection, grains: tuple[str, ...], f: Filters | None = None) -> Published:
    """The shown cells of ``grains`` (only those ``f`` selects, read through the rollup's key)."""
    k = int(conn.execute(sa.text("SELECT k FROM hub_settings WHERE id = 1")).scalar_one())
    query = sa.select(shown_cells).where(shown_cells.c.grain.in_(grains))
    if f is not None:
        width = 7 if f.grain == "month" else 10  # YYYY-MM, or the day (of a week's Monday)
        query = query.where(shown_cells.c.level == f.level, shown_cells.c.grain == f.grain)
        if f.site:
            query = query.where(shown_cells.c.site == f.site)
        if f.room:
            query = query.where(shown_cells.c.room == f.room)
        if f.start:
            query = query.where(shown_cells.c.period >= f.start[:width])
        if f.end:
            query = query.where(shown_cells.c.period <= f.end[:width])
    cells: dict[tuple[str, str], list[Cell]] = {}
    for row in conn.execute(query).mappings():
        cell = released_cell(row)
        cells.setdefault((cell.level, cell.grain), []).append(cell)
    for table in cells.values():
        table.sort(key=lambda c: c.key)
    latest = sa.select(sa.func.max(releases.c.id)).group_by(releases.c.grain, releases.c.period)
    hidden = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(releases.c.hidden), 0)).where(releases.c.id.in_(latest))
    ).scalar_one()
    return Published(k, cells, int(hidden))


@dataclass(frozen=True)
class Row:
    """One shown cell, as ratios a person reads."""

    site: str
    room: str
    period: str
    sessions: int
    hours: float | None  # None where not released (differential privacy mode)
    shares: dict[str, float | None]  # by hub.measures.SHARES name
    emotions: dict[str, float | None]
    flags: dict[str, float | None]

    def csv(self) -> list[str]:
        def pct(v: float | None) -> str:
            return "" if v is None else f"{100 * v:.1f}"

        return [
            self.site,
            self.room,
            self.period,
            str(self.sessions),
            "" if self.hours is None else f"{self.hours:.2f}",
            *(pct(self.shares[m.name]) for m in SHARES),
            *(pct(self.emotions[c]) for c in CLASSES),
            *(pct(self.flags[f]) for f in FLAGS),
        ]


CSV_HEADER = [
    "site",
    "room",
    "period",
    "sessions",
    "hours",
    *(m.csv for m in SHARES),
    *(f"{c}_pct" for c in CLASSES),
    *(f"{f}_windows_pct" for f in FLAGS),
]


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else num / den


def to_row(cell: Cell) -> Row:
    s = cell.sums
    dims = cell.key[:-1]
    return Row(
        site=dims[0] if len(dims) > 0 else "all sites",
        room=dims[1] if len(dims) > 1 else "all rooms",
        period=cell.period,
        sessions=cell.sessions,
        hours=s["seconds"] / 3600.0 if s["windows"] > 0 else None,
        shares={m.name: _ratio(s.get(m.column, 0.0), s["windows"]) for m in SHARES},
        emotions={c: _ratio(s[f"p_{c}"], s["prob_windows"]) for c in CLASSES},
        flags={f: _ratio(s[f"flag_{f}"], s["windows"]) for f in FLAGS},
    )


def select(released: Published, f: Filters) -> list[Row]:
    """Shown cells for the filters, newest period last (none for filters with a problem)."""
    if f.problem:
        return []
    rows = []
    for cell in released.table(f.level, f.grain):
        dims = cell.key[:-1]
        if f.site and (len(dims) < 1 or dims[0] != f.site):
            continue
        if f.room and (len(dims) < 2 or dims[1] != f.room):
            continue
        if f.start and cell.period < f.start[: len(cell.period)]:
            continue
        if f.end and cell.period > f.end[: len(cell.period)]:
            continue
        rows.append(to_row(cell))
    return sorted(rows, key=lambda r: (r.period, r.site, r.room))


@dataclass(frozen=True)
class DeviceHealth:
    device_id: str
    site: str
    room: str
    state: str
    session_state: str
    degraded: str
    outbox: int | None
    calibration_age_days: int | None
    last_summary_at: str | None
    last_status_at: str | None
    summaries: int
    duplicates: int
    missing: int

    def concerns(self) -> list[tuple[str, str]]:
        """(level, reason) for each thing that needs a look: ``problem`` first, then ``check``."""
        out: list[tuple[str, str]] = []
        if self.state != "online":
            out.append(("problem", "offline" + (f" since {ago(self.last_status_at)}" if self.last_status_at else "")))
        if self.degraded:
            out.append(("problem", f"degraded: {self.degraded}"))
        if self.calibration_age_days is None:
            out.append(("problem", "never calibrated"))
        elif self.calibration_age_days > CALIBRATION_STALE_DAYS:
            out.append(("problem", f"calibrated {self.calibration_age_days} days ago"))
        elif self.calibration_age_days > CALIBRATION_CHECK_DAYS:
            out.append(("check", f"calibrated {self.calibration_age_days} days ago"))
        if self.outbox is not None and self.outbox >= OUTBOX_PROBLEM:
            out.append(("problem", f"{self.outbox} summaries waiting to be sent"))
        elif self.outbox is not None and self.outbox >= OUTBOX_CHECK:
            out.append(("check", f"{self.outbox} summaries waiting to be sent"))
        if self.missing:
            out.append(("check", f"{self.missing} summaries missing"))
        return sorted(out, key=lambda c: c[0] != "problem")

    @property
    def level(self) -> str:
        """``problem``, ``check`` or ``ok``: the row's colour and its place in the default order."""
        found = {lvl for lvl, _ in self.concerns()}
        return "problem" if "problem" in found else "check" if found else "ok"


def _stamp(iso: str | None) -> dt.datetime | None:
    """An appliance's ISO time (``Z`` or an offset; none means UTC), or None when absent or unreadable."""
    if not iso:
        return None
    try:
        stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.timezone.utc)


def ago(iso: str | None, now: dt.datetime | None = None) -> str:
    """``iso`` as a person reads it relative to now: "5 min ago", "3 h ago", "2 days ago"."""
    stamp = _stamp(iso)
    if stamp is None:
        return iso or "never"
    seconds = max(((now or dt.datetime.now(dt.timezone.utc)) - stamp).total_seconds(), 0.0)
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


SORTS = {
    "attention": lambda d: ({"problem": 0, "check": 1, "ok": 2}[d.level], d.site, d.room),
    "room": lambda d: (d.site, d.room),
    "outbox": lambda d: (-(d.outbox or 0), d.site, d.room),
    "calibrated": lambda d: (-(d.calibration_age_days if d.calibration_age_days is not None else 10**6), d.site),
    "missing": lambda d: (-d.missing, d.site, d.room),
}


def _age_days(iso: str | None, now: dt.datetime) -> int | None:
    stamp = _stamp(iso)
    return None if stamp is None else max((now - stamp).days, 0)


def withdrawn_after_release(engine: sa.Engine) -> int:
    """Sessions their rooms erased on request after a period holding them was released: the
    released numbers still count them (they never change); the pages say so."""
    with engine.begin() as conn:
        query = sa.select(sa.func.count()).select_from(retractions).where(retractions.c.released_parts > 0)
        return int(conn.execute(query).scalar_one())


def health(engine: sa.Engine, site: str | None = None) -> list[DeviceHealth]:
    now = dt.datetime.now(dt.timezone.utc)
    query = sa.select(devices).order_by(devices.c.site, devices.c.room, devices.c.device_id)
    if site:
        query = query.where(devices.c.site == site)
    with engine.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        DeviceHealth(
            device_id=device_name(r["device_id"]),
            site=r["site"],
            room=r["room"],
            state=r["state"] or "unknown",
            session_state=r["session_state"] or "-",
            degraded=r["degraded"] or "",
            outbox=r["outbox"],
            calibration_age_days=_age_days(r["calibrated_at"], now),
            last_summary_at=r["last_summary_at"],
            last_status_at=r["last_status_at"],
            summaries=int(r["summaries"] or 0),
            duplicates=int(r["duplicates"] or 0),
            missing=int(r["missing"] or 0),
        )
        for r in rows
    ]


def scopes(engine: sa.Engine) -> tuple[list[str], dict[str, list[str]]]:
    """Sites and rooms to offer in the filters (from the appliances' health, not from sessions)."""
    with engine.begin() as conn:
        pairs = conn.execute(sa.select(devices.c.site, devices.c.room).distinct()).all()
    rooms: dict[str, list[str]] = {}
    for site, room in pairs:
        rooms.setdefault(site, []).append(room)
    return sorted(rooms), {s: sorted(r) for s, r in rooms.items()}
