"""Releases: what the dashboard shows, computed once per closed period and then frozen.

A period (a day, an ISO week, a month of whole weeks: :mod:`hub.periods`) is released once it
ended ``release_delay_days`` ago. Releasing it, in one transaction:

1. seals the session rows of the period (summaries of those sessions that still arrive go into a
   new part of the session, sealed by a later release);
2. builds every cell of the period (the clinic, each site, each room) from the sealed rows;
3. keeps the cells :func:`hub.privacy.suppress` allows beside every cell already released in the
   same month, and stores them; nothing released is ever changed.

Finer grains are released first (a day before its week, a week before its month). Rows that
arrive late for a released day or week go into the week or month that holds it; rows late for a
released month go into a revision of that month (version 2, 3, ...), checked together with
everything the month released before, and stored only when it shows something.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from clinic_common.errors import ConfigError
from contract.classes import CLASSES
from hub.config import PrivacyConfig
from hub.dp import Noise, Totals, measure
from hub.locks import RELEASES, one_at_a_time
from hub.periods import GRAINS, Grain, closed, coarser
from hub.privacy import LEVELS, Atom, Cell, Contribution, Rule, SuppressionError, candidates, suppress
from hub.store import SUMS, devices, hub_settings, released_cells, releases, rolled_up, sessions, shown_cells

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Released:
    grain: Grain
    period: str
    version: int
    shown: int
    hidden: int


class PrivacySettingsError(ConfigError):
    """A privacy setting was changed in a way the released history cannot be kept safe with."""


@dataclass(frozen=True)
class ReleasePolicy:
    k: int
    delay_days: int
    grains: tuple[Grain, ...]  # finest first
    mode: Literal["k", "dp"] = "k"
    epsilon: float = 1.0  # dp mode: per release
    dominance: float = 0.3  # k mode: largest share of a block's windows one session may hold

    @property
    def finest(self) -> Grain:
        return self.grains[0]

    @property
    def rule(self) -> Rule:
        return Rule(self.k, self.dominance)


def _scope(period: str, grain: Grain) -> str:
    return coarser(period, grain, "month") if grain != "month" else period


def _atoms(conn: sa.Connection, month: str) -> list[Atom]:
    """The month's sealed rows as atoms: one per room, day and sealing release (whatever the grain)."""
    rows = conn.execute(
        sa.select(
            sessions.c.session_id,
            sessions.c.site,
            sessions.c.room,
            sessions.c.day,
            sessions.c.sealed_in,
            *(sessions.c[s] for s in SUMS),
        ).where(sessions.c.month == month, sessions.c.sealed_in.is_not(None))
    ).mappings()
    groups: dict[tuple[str, str, str, int], tuple[dict[str, Contribution], dict[str, float]]] = defaultdict(
        lambda: ({}, {})
    )
    for row in rows:
        ids, sums = groups[(row["site"], row["room"], row["day"], row["sealed_in"])]
        add = Contribution(float(row["windows"]), float(row["prob_windows"]))
        ids[row["session_id"]] = ids[row["session_id"]] + add if row["session_id"] in ids else add
        for s in SUMS:
            sums[s] = sums.get(s, 0.0) + float(row[s])
    return [Atom(*key, sessions=ids, sums=sums) for key, (ids, sums) in sorted(groups.items())]


def released_cell(row: sa.RowMapping) -> Cell:
    """A row of ``released_cells`` as the cell it released (the one reader of that table's rows)."""
    dims = (row["site"], row["room"])[: LEVELS[row["level"]]]
    sums = {s: float(row[s]) for s in SUMS}
    return Cell(row["level"], row["grain"], dims, row["period"], row["release_id"], row["sessions"], sums)


def _fixed(conn: sa.Connection, month: str) -> list[Cell]:
    rows = conn.execute(
        sa.select(released_cells)
        .join(releases, releases.c.id == released_cells.c.release_id)
        .where(releases.c.scope == month)
    ).mappings()
    return [released_cell(r) for r in rows]


def _previous(conn: sa.Connection, grain: Grain, period: str) -> dict[tuple[str, tuple[str, ...]], Cell]:
    """The newest released version of each cell of ``period``."""
    rows = conn.execute(
        sa.select(released_cells)
        .where(released_cells.c.grain == grain, released_cells.c.period == period)
        .order_by(released_cells.c.release_id)
    ).mappings()
    return {(cell.level, cell.dims): cell for cell in map(released_cell, rows)}


def _same(cell: Cell, before: Cell | None) -> bool:
    return (
        before is not None
        and before.sessions == cell.sessions
        and all(math.isclose(before.sums.get(s, 0.0), cell.sums.get(s, 0.0), rel_tol=1e-12) for s in SUMS)
    )


def release_one(
    conn: sa.Connection, grain: Grain, period: str, policy: ReleasePolicy, today: dt.date
) -> Released | None:
    """Release ``period`` (or revise it when released before); None when a revision shows nothing."""
    scope = _scope(period, grain)
    # Take the releases' write lock before reading anything: two runs that both listed this period
    # as due (the hourly one and `clinic-hub release`) then release it one after the other, and the
    # second sees the first's release (SQLite has no advisory lock; on PostgreSQL this row lock
    # backs up the advisory one).
    conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(k=hub_settings.c.k))
    earlier = conn.execute(
        sa.select(sa.func.max(releases.c.version)).where(releases.c.grain == grain, releases.c.period == period)
    ).scalar_one()
    if earlier is not None and policy.mode == "dp":
        return None  # released already: a second noisy release would spend epsilon again
    version = (earlier or 0) + 1
    inserted = conn.execute(
        releases.insert().values(
            grain=grain,
            period=period,
            scope=scope,
            version=version,
            released_on=today.isoformat(),
            k=policy.k,
            mode=policy.mode,
            epsilon=policy.epsilon if policy.mode == "dp" else None,
            finest=policy.finest,
            dominance=policy.dominance if policy.mode == "k" else None,
            shown=0,
            hidden=0,
        )
    ).inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database gave the new release no id")
    release_id = int(inserted[0])
    # Seal first: on PostgreSQL this waits for a summary being added to a row of the period and then
    # takes it; what arrives after the commit goes into a new part.
    conn.execute(
        sessions.update()
        .where(sessions.c[grain] == period, sessions.c.sealed_in.is_(None))
        .values(sealed_in=release_id)
    )
    if policy.mode == "dp":
        return _release_noisy(conn, grain, period, release_id, policy)
    atoms = _atoms(conn, scope)
    offered = candidates(atoms, grain, period, release_id)
    shown = suppress(atoms, _fixed(conn, scope), offered, policy.rule)
    hidden = len(offered) - len(shown)
    if version > 1:
        # A revision stores the cells that changed; the others stay as released.
        before = _previous(conn, grain, period)
        shown = [c for c in shown if not _same(c, before.get((c.level, c.dims)))]
        if not shown:
            return None
    for cell in shown:
        _store(conn, release_id, cell)
    conn.execute(releases.update().where(releases.c.id == release_id).values(shown=len(shown), hidden=hidden))
    return Released(grain, period, version, len(shown), hidden)


def _store(conn: sa.Connection, release_id: int, cell: Cell) -> None:
    """Store a released cell, and make it the shown version of its cell (the dashboard's rollup)."""
    dims = (*cell.dims, "", "")[:2]
    row = {
        "release_id": release_id,
        "level": cell.level,
        "grain": cell.grain,
        "site": dims[0],
        "room": dims[1],
        "period": cell.period,
        "sessions": cell.sessions,
        **{s: cell.sums.get(s, 0.0) for s in SUMS},
    }
    conn.execute(released_cells.insert().values(**row))
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(shown_cells)
    key = ["level", "grain", "site", "room", "period"]
    conn.execute(
        insert.values(**row).on_conflict_do_update(
            index_elements=key, set_={k: v for k, v in row.items() if k not in key}
        )
    )


def _release_noisy(conn: sa.Connection, grain: Grain, period: str, release_id: int, policy: ReleasePolicy) -> Released:
    """A differentially private release of the period (:mod:`hub.dp`): every cell of every known room
    and site, noisy; those whose noisy count reaches k are stored."""
    per_session: dict[str, tuple[str, str, list[float], float]] = {}
    rows = conn.execute(
        sa.select(
            sessions.c.session_id,
            sessions.c.site,
            sessions.c.room,
            sessions.c.prob_windows,
            *(sessions.c[f"p_{c}"] for c in CLASSES),
        ).where(sessions.c[grain] == period, sessions.c.sealed_in.is_not(None), sessions.c.sealed_in <= release_id)
    ).mappings()
    for r in rows:
        site, room, sums, windows = per_session.get(r["session_id"], (r["site"], r["room"], [0.0] * len(CLASSES), 0.0))
        sums = [a + float(r[f"p_{c}"]) for a, c in zip(sums, CLASSES, strict=True)]
        per_session[r["session_id"]] = (site, room, sums, windows + float(r["prob_windows"]))
    # The cells are every room and site the hub knows, not only those with sessions: which cells
    # exist must not depend on the data.
    places = {(site, room) for site, room in conn.execute(sa.select(devices.c.site, devices.c.room))}
    places |= {(site, room) for site, room, _, _ in per_session.values()}
    keys: list[tuple[str, tuple[str, ...]]] = [
        ("clinic", ()),
        *sorted({("site", (site,)) for site, _ in places}),
        *sorted(("room", place) for place in places),
    ]
    counts = dict.fromkeys(keys, 0)
    shares = {key: [0.0] * len(CLASSES) for key in keys}
    for site, room, sums, windows in per_session.values():
        distribution = [v / windows for v in sums] if windows > 0 else [0.0] * len(CLASSES)
        for key in (("clinic", ()), ("site", (site,)), ("room", (site, room))):
            counts[key] += 1
            shares[key] = [a + b for a, b in zip(shares[key], distribution, strict=True)]
    noise = Noise(policy.epsilon)
    noisy = measure([Totals(counts[key], shares[key]) for key in keys], noise)
    shown = 0
    for (level, dims), result in zip(keys, noisy, strict=True):
        if result.sessions < policy.k:
            continue
        sums = {f"p_{c}": v for c, v in zip(CLASSES, result.shares, strict=True)}
        sums["prob_windows"] = sum(result.shares)
        _store(conn, release_id, Cell(level, grain, dims, period, release_id, result.sessions, sums))
        shown += 1
    hidden = len(keys) - shown
    conn.execute(releases.update().where(releases.c.id == release_id).values(shown=shown, hidden=hidden))
    return Released(grain, period, 1, shown, hidden)


def _due(conn: sa.Connection, grain: Grain, policy: ReleasePolicy, today: dt.date) -> list[str]:
    """Closed periods of ``grain`` never released, oldest first; at the coarsest grain also released
    ones holding unsealed rows (late data: a revision). Finer late rows wait for the coarser release
    that holds them."""
    column = sessions.c[grain]
    done = sa.select(releases.c.period).where(releases.c.grain == grain)
    periods = set(conn.execute(sa.select(column).where(column.not_in(done)).distinct()).scalars())
    if grain == policy.grains[-1] and policy.mode == "k":  # no revisions in dp mode: each would spend epsilon
        periods |= set(conn.execute(sa.select(column).where(sessions.c.sealed_in.is_(None)).distinct()).scalars())
    return sorted(p for p in periods if closed(p, grain, today, policy.delay_days))


def policy_for(
    engine: sa.Engine, finest: Grain, delay_days: int, mode: Literal["k", "dp"] = "k", epsilon: float = 1.0
) -> ReleasePolicy:
    """The release policy: the database's k (it only grows) and dominance (it only tightens), the
    grains from ``finest`` up.

    Raises:
        PrivacySettingsError: a month is partly released under settings these cannot be combined with.
    """
    with engine.begin() as conn:
        row = conn.execute(sa.select(hub_settings.c.k, hub_settings.c.dominance).where(hub_settings.c.id == 1)).one()
        policy = ReleasePolicy(
            int(row.k), delay_days, GRAINS[GRAINS.index(finest) :], mode, epsilon, float(row.dominance)
        )
        _check_history(conn, policy)
    return policy


def configured_policy(engine: sa.Engine, privacy: PrivacyConfig) -> ReleasePolicy:
    return policy_for(engine, privacy.finest_grain, privacy.release_delay_days, privacy.mode, privacy.epsilon)


def _check_history(conn: sa.Connection, policy: ReleasePolicy) -> None:
    """Refuse settings that cannot be combined with what a month already released.

    A month whose own release has not been made yet is *open*. Its earlier releases (days, weeks)
    were made under some mode and epsilon; switching the mode in an open month would mix exact and
    noisy numbers of the same sessions, and changing epsilon or the grains in dp mode would spend a
    budget other than the one its sessions were promised. These changes wait for the month to be
    released. A change of the grain in k mode needs no wait: the audit builds its atoms from days
    whatever grain was released, and checks every cell ever shown in the month.
    """
    done = sa.select(releases.c.period).where(releases.c.grain == "month")
    rows = conn.execute(
        sa.select(releases.c.scope, releases.c.mode, releases.c.epsilon, releases.c.finest)
        .where(releases.c.scope.not_in(done))
        .order_by(releases.c.id)
    ).all()
    for scope, mode, epsilon, finest in rows:
        before = {"mode": mode, "epsilon": epsilon, "finest_grain": finest}
        now: dict[str, object] = {"mode": policy.mode}
        if mode == "dp" and policy.mode == "dp":
            now |= {"epsilon": policy.epsilon, "finest_grain": policy.finest}
        changed = [name for name, value in now.items() if before[name] is not None and not _equal(before[name], value)]
        if changed:
            was = ", ".join(f"privacy.{n} = {before[n]!r}" for n in changed)
            is_ = ", ".join(f"{now[n]!r}" for n in changed)
            raise PrivacySettingsError(
                f"month {scope} is partly released with {was}; the configured {is_} cannot be combined with "
                f"what it released (its numbers could then be differenced or its budget overspent). Keep the "
                f"old setting until month {scope} is released, then change it"
            )


def _equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


def release_due(engine: sa.Engine, policy: ReleasePolicy, today: dt.date | None = None) -> list[Released]:
    """Release every period that closed, finest grain first; each period in its own transaction.
    One process releases at a time (two would both make version 1 of a period)."""
    with one_at_a_time(engine, RELEASES):
        return _release_due(engine, policy, today)


def _release_due(engine: sa.Engine, policy: ReleasePolicy, today: dt.date | None) -> list[Released]:
    today = today or dt.datetime.now(dt.timezone.utc).date()
    out = []
    for grain in policy.grains:
        with engine.begin() as conn:
            due = _due(conn, grain, policy, today)
        for period in due:
            with engine.connect() as conn:
                transaction = conn.begin()
                try:
                    done = release_one(conn, grain, period, policy, today)
                except SuppressionError as exc:
                    transaction.rollback()
                    logger.error("cannot release %s %s: %s", grain, period, exc)
                    continue
                if done is None:
                    transaction.rollback()
                    logger.debug("late data for %s %s: nothing more can be shown yet", grain, period)
                    continue
                transaction.commit()
            out.append(done)
            logger.info(
                "released %s %s (version %d): %d cells shown, %d hidden",
                grain,
                period,
                done.version,
                done.shown,
                done.hidden,
            )
    return out


def roll_up(engine: sa.Engine, keep_days: int, today: dt.date | None = None) -> list[str]:
    """Delete the session rows of every month released at least ``keep_days`` ago; its released
    cells stay. Returns the months rolled up."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    cutoff = (today - dt.timedelta(days=keep_days)).isoformat()
    with engine.begin() as conn:
        done = sa.select(rolled_up.c.month)
        due = (
            conn.execute(
                sa.select(releases.c.period)
                .where(releases.c.grain == "month", releases.c.version == 1, releases.c.released_on <= cutoff)
                .where(releases.c.period.not_in(done))
            )
            .scalars()
            .all()
        )
    out = []
    for month in sorted(due):
        with engine.begin() as conn:
            conn.execute(rolled_up.insert().values(month=month, rolled_up_on=today.isoformat()))
            deleted = conn.execute(sessions.delete().where(sessions.c.month == month)).rowcount
        logger.info("month %s rolled up: %d session rows deleted, its releases kept", month, deleted)
        out.append(month)
    return out
