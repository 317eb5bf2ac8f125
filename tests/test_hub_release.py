"""Releases that cannot be differenced: the hub's own ingest and release code on real databases,
attacked by an adversary that holds every cell ever released (all grains, levels and versions)
and combines them as it likes.

The adversary here is written apart from ``hub.privacy``: it rebuilds which session rows each
released cell holds from the database, checks the released numbers against them, and then looks
for any combination of cells that covers fewer than k sessions."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hub_adversary import Clinic, csv_rows, days_between, exposures, release
from hub_helpers import hub_config, postgres, summary

from clinic_common.errors import ConfigError
from hub.dashboard import published
from hub.grants import as_dashboard
from hub.periods import GRAINS, closed, end_of, month_of, period_of, week_of
from hub.release import roll_up
from hub.service import open_database
from hub.store import SCHEMA_VERSION, SUMS, released_cells, releases, sessions, shown_cells
from hub.users import hub_accounts


@pytest.mark.unit
def test_months_are_whole_iso_weeks() -> None:
    assert month_of("2026-03-30") == "2026-04"  # its week's Thursday is 2 April
    assert month_of("2026-03-29") == "2026-03"
    assert period_of("2026-03-31", "week") == "2026-03-30"
    for day in days_between("2025-12-01", "2027-02-01"):
        week = week_of(day)
        assert all(
            month_of(d) == month_of(week)
            for d in days_between(week, (dt.date.fromisoformat(week) + dt.timedelta(6)).isoformat())
        )
        assert end_of(month_of(day), "month") > dt.date.fromisoformat(day) >= dt.date.fromisoformat(week)
    assert not closed("2026-11", "month", dt.date(2026, 11, 30), 2)
    assert closed("2026-11-16", "week", dt.date(2026, 11, 25), 2) and not closed(
        "2026-11-16", "week", dt.date(2026, 11, 24), 2
    )


def test_month_minus_its_weeks_reveals_nothing(tmp_path: Path) -> None:
    """The review's case: 11 sessions in each of four March weeks (no day reaching 11), one session
    alone on 31 March and 11 on 1-5 April. The March row minus its week rows gave that one session."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="day"))
    clinic = Clinic(engine)
    lone = ""
    for week in ("2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23"):
        days = days_between(week, (dt.date.fromisoformat(week) + dt.timedelta(4)).isoformat())
        for i in range(11):
            clinic.session("north", "r1", days[i % 5], label="happy")
    lone = clinic.session("north", "r1", "2026-03-31", label="sad")
    for i in range(11):
        clinic.session("north", "r1", f"2026-04-0{1 + i % 5}", label="calm")
    done = release(engine, "2026-05-20")
    assert {(r.grain, r.period) for r in done} >= {("month", "2026-03"), ("month", "2026-04"), ("week", "2026-03-30")}
    assert exposures(engine) == []
    with engine.connect() as conn:
        shown = published(conn, GRAINS)
    march = [c for c in shown.table("clinic", "month") if c.period == "2026-03"]
    weeks = [c for c in shown.table("clinic", "week") if month_of(c.period) == "2026-03"]
    assert [c.sessions for c in march] == [44] and [c.sessions for c in weeks] == [11, 11, 11, 11]
    for s in SUMS:  # the month is its weeks: nothing is left over to subtract
        assert march[0].sums[s] == pytest.approx(sum(w.sums[s] for w in weeks))
    # The lone session's week (30 March - 5 April) is released with the April sessions, as April.
    april_week = [c for c in shown.table("clinic", "week") if c.period == "2026-03-30"]
    assert [c.sessions for c in april_week] == [12]
    with engine.begin() as conn:
        assert conn.execute(sa.select(sessions.c.month).where(sessions.c.session_id == lone)).scalar_one() == "2026-04"


def test_late_sessions_never_change_a_released_number(tmp_path: Path) -> None:
    """The review's second case: two exports before and after a room-day went from 11 to 12
    sessions gave the new session's shares. Released numbers are frozen; the late session goes into
    a later release only where it cannot be told apart."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="day"))
    clinic = Clinic(engine)
    for _ in range(11):
        clinic.session("north", "r1", "2026-11-02", label="happy")
    for _ in range(30):
        clinic.session("north", "r1", "2026-11-04", label="calm")
    release(engine, "2026-11-05")  # 2 November is released; the week is not over yet
    first = csv_rows(engine, GRAINS)
    assert ("clinic", "day", "all sites", "all rooms", "2026-11-02", "11") in {r[:6] for r in first}
    late = clinic.session("north", "r1", "2026-11-02", label="sad")
    release(engine, "2026-11-12")  # the week, holding the late session, is released
    second = csv_rows(engine, GRAINS)
    assert first <= second  # nothing shown before changed or disappeared
    assert exposures(engine) == []
    with engine.begin() as conn:
        parts = conn.execute(sa.select(sessions.c.sealed_in).where(sessions.c.session_id == late)).scalars().all()
    assert len(parts) == 1 and parts[0] is not None  # sealed into the week's release...
    week = [r for r in second if r[1] == "week" and r[0] == "clinic"]
    assert week == []  # ...which cannot show the week: week minus its released days would be that session
    # A further session of the same week is still one: the week stays held back.
    clinic.session("north", "r1", "2026-11-03", label="sad")
    assert exposures(engine) == []


def test_summaries_after_a_release_go_into_a_new_part_and_a_revision(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    clinic = Clinic(engine)
    ids = [clinic.session("north", f"r{i % 2}", "2026-10-06") for i in range(24)]
    first = release(engine, "2026-11-05", finest="week")
    assert [(r.grain, r.period, r.version) for r in first] == [("week", "2026-10-05", 1), ("month", "2026-10", 1)]
    # Summaries of 3 released sessions arrive late: a new part each, held (3 < k).
    for session_id in ids[0:6:2]:  # three sessions of r0
        clinic.send("north", "r0", "2026-10-06", session_id, label="sad")
    assert release(engine, "2026-11-06", finest="week") == []
    with engine.begin() as conn:
        parts = conn.execute(sa.select(sessions.c.part).where(sessions.c.session_id == ids[0])).scalars().all()
    assert sorted(parts) == [0, 1]
    # Twelve more late sessions: the month can be revised, checked with what it released before.
    for _ in range(12):
        clinic.session("north", "r0", "2026-10-07")
    revised = release(engine, "2026-11-07", finest="week")
    assert [(r.grain, r.period, r.version) for r in revised] == [("month", "2026-10", 2)]
    assert exposures(engine) == []
    with engine.connect() as conn:
        shown = published(conn, ("week", "month"))
    months = shown.table("clinic", "month")
    assert [c.sessions for c in months] == [36]  # the revision is what the dashboard shows


def _varied_session(clinic: Clinic, rng: random.Random, site: str, room: str, day: str) -> str:
    """An ordinary session (one window), an empty one (nobody in view) or a long one."""
    kind = rng.random()
    session_id = str(uuid.uuid4())
    if kind < 0.15:
        clinic.send(site, room, day, session_id, empty=True, n=rng.randint(1, 60))
    elif kind < 0.25:
        clinic.send(site, room, day, session_id, label=rng.choice(["happy", "sad"]), n=rng.randint(20, 400))
    else:
        clinic.send(site, room, day, session_id, label=rng.choice(["happy", "sad", "calm"]))
    return session_id


@pytest.mark.parametrize(
    ("seed", "finest", "switch", "k"),
    [
        (1, "day", None, 11),
        (2, "day", "week", 11),
        (3, "week", None, 11),
        (4, "day", None, 20),
        (5, "week", "month", 11),
        (6, "week", "day", 11),
    ],
)
def test_adversary_recovers_nothing_from_generated_clinics(
    tmp_path: Path, seed: int, finest: str, switch: str | None, k: int
) -> None:
    """Sites, rooms and days drawn at random (many cells below k), summaries arriving in time, late
    and very late, releases run every few days over two months; among the sessions empty ones (nobody
    in view) and long ones, some withdrawn by their room days later, and the grain switched mid-month
    (``switch``): every cell ever released, at every level, grain and version, combined in any way,
    rests on at least k contributing sessions and on no dominant one."""
    rng = random.Random(seed)
    engine = open_database(hub_config(tmp_path, 1883, k=k, finest_grain=finest))
    clinic = Clinic(engine)
    places = [(f"site{s}", f"room{r}") for s in range(rng.randint(1, 2)) for r in range(rng.randint(1, 3))]
    days = days_between("2026-02-23", "2026-04-19")
    plan = sorted(
        (day, place, rng.random())
        for day in days
        for place in places
        for _ in range(rng.choice([0, 0, 1, 2, 3, 5]))
        if dt.date.fromisoformat(day).weekday() < 6
    )
    late: list[tuple[str, str, str, str, str]] = []  # (arrives on, site, room, day, session) summaries sent late
    withdrawn: dict[str, list[tuple[str, str, str]]] = {}  # day -> (site, room, session) retracted that day
    gone: set[str] = set()
    released_any = False
    grain = finest
    for today in days_between("2026-02-23", "2026-05-31"):
        if switch is not None and today == "2026-03-12":  # mid-month
            grain = switch
        for day, (site, room), chance in plan:
            if day != today:
                continue
            if chance < 0.06:  # the whole session reaches the hub weeks later (an outbox held back)
                arrive = (dt.date.fromisoformat(day) + dt.timedelta(days=rng.randint(5, 40))).isoformat()
                late.append((arrive, site, room, day, str(uuid.uuid4())))
                continue
            session_id = _varied_session(clinic, rng, site, room, day)
            if chance > 0.9:  # one more summary of it arrives later
                arrive = (dt.date.fromisoformat(day) + dt.timedelta(days=rng.randint(1, 30))).isoformat()
                late.append((arrive, site, room, day, session_id))
            if rng.random() < 0.05:  # withdrawn by the client days or weeks later
                when = (dt.date.fromisoformat(day) + dt.timedelta(days=rng.randint(1, 25))).isoformat()
                withdrawn.setdefault(when, []).append((site, room, session_id))
        for arrive, site, room, day, session_id in late:
            if arrive == today and session_id not in gone:
                clinic.send(site, room, day, session_id, label="sad")
        for site, room, session_id in withdrawn.get(today, []):
            clinic.retract(site, room, session_id)
            gone.add(session_id)
        if dt.date.fromisoformat(today).weekday() in (0, 3):
            released_any |= bool(release(engine, today, finest=grain))
            release(engine, today, finest=grain)  # run again at once (the hourly run and a command): no change
    assert released_any and gone
    problems = exposures(engine)
    assert problems == [], problems[:5]
    with engine.begin() as conn:
        shown = conn.execute(sa.select(sa.func.count()).select_from(released_cells)).scalar_one()
        held = conn.execute(sa.select(sa.func.sum(releases.c.hidden))).scalar_one()
        small = conn.execute(
            sa.text(
                f"SELECT COUNT(*) FROM (SELECT site, room, {finest} FROM sessions "
                "GROUP BY 1, 2, 3 HAVING COUNT(*) < :k) t"
            ),
            {"k": k},
        ).scalar_one()
        left = conn.execute(sa.select(sa.func.count()).where(sessions.c.session_id.in_(gone))).scalar_one()
    assert shown > 0 and held > 0 and small > 0  # something shown, something held back, data below k
    assert left == 0  # no withdrawn session is linked to what the hub keeps


def test_only_closed_periods_are_released(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    clinic = Clinic(engine)
    for _ in range(15):
        clinic.session("north", "r1", "2026-11-25")
    assert release(engine, "2026-11-30", finest="week") == []  # the week ends on the 30th, + 2 days
    assert release(engine, "2026-12-01", finest="week") == []
    # The week of 23 November is the last of the November month (2-29 November): both close together.
    done = release(engine, "2026-12-02", finest="week")
    assert [(r.grain, r.period) for r in done] == [("week", "2026-11-23"), ("month", "2026-11")]


def test_release_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hub.cli import main

    path = tmp_path / "hub.toml"
    path.write_text(f"[database]\nurl = 'sqlite:///{tmp_path / 'hub.db'}'\n[privacy]\nrelease_delay_days = 0\n")
    clinic = Clinic(open_database(hub_config(tmp_path, 1883)))
    for _ in range(12):
        clinic.session("north", "r1", "2026-10-06")
    assert main(["--config", str(path), "release"]) == 0
    out = capsys.readouterr().out
    assert "week 2026-10-05 (version 1): 3 cells shown, 0 held back" in out
    assert main(["--config", str(path), "release"]) == 0
    assert "nothing to release" in capsys.readouterr().out


def test_a_version_1_database_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE hub_settings (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, "
                "schema_version INTEGER NOT NULL)"
            )
        )
        conn.execute(sa.text("INSERT INTO hub_settings VALUES (1, 11, 1)"))
        columns = ", ".join(f"{c.name} {c.type}" for c in sessions.columns if c.name not in ("part", "sealed_in"))
        conn.execute(sa.text(f"CREATE TABLE sessions ({columns}, PRIMARY KEY (session_id))"))
        conn.execute(
            sa.text("CREATE VIEW agg_clinic_month AS SELECT month, COUNT(*) AS sessions FROM sessions GROUP BY month")
        )
        values = {c.name: 0 for c in sessions.columns if c.name not in ("part", "sealed_in")}
        for i in range(3):
            values.update(
                session_id=f"s{i}", site="north", room="r1", day="2026-03-31", week="2026-03-30", month="2026-03"
            )
            conn.execute(
                sa.text(f"INSERT INTO sessions ({', '.join(values)}) VALUES ({', '.join(':' + n for n in values)})"),
                values,
            )
    old.dispose()
    engine = open_database(hub_config(tmp_path, 1883))
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(sessions.c.session_id, sessions.c.part, sessions.c.month, sessions.c.sealed_in)
        ).all()
        version = conn.execute(sa.text("SELECT schema_version FROM hub_settings")).scalar_one()
    assert sorted(tuple(r) for r in rows) == [(f"s{i}", 0, "2026-04", None) for i in range(3)]
    assert version == SCHEMA_VERSION == 6


def test_postgresql_releases_the_same_and_the_dashboard_role_reads_only_releases(tmp_path: Path) -> None:
    with postgres(tmp_path) as pg:
        engines = [
            open_database(hub_config(tmp_path, 1883, url=pg.url)),
            open_database(hub_config(tmp_path / "lite", 1883)),
        ]
        results: list[Any] = []
        for engine in engines:
            rng = random.Random(7)
            clinic = Clinic(engine)
            for day in days_between("2026-10-05", "2026-10-30"):
                for site, room in (("north", "r1"), ("north", "r2"), ("south", "r1")):
                    for _ in range(rng.randint(0, 3)):
                        clinic.session(site, room, day)
            release(engine, "2026-11-20", finest="day")
            assert exposures(engine) == []
            results.append(csv_rows(engine, GRAINS))
        assert results[0] == results[1] and results[0]
        with pytest.raises(ConfigError, match=r"database\.dashboard_password_file"):
            as_dashboard(engines[0], None)
        dashboard = as_dashboard(engines[0], "dashboard-password-for-tests")
        # What the dashboard does works as the restricted role: read releases, keep accounts.
        accounts = hub_accounts(dashboard)
        accounts.save("admin", "a long enough secret", "admin", "test")
        assert accounts.sessions.get(accounts.log_in("admin", "a long enough secret", "127.0.0.1")) is not None
        with dashboard.connect() as conn:
            assert csv_rows(dashboard, GRAINS) == results[0]
            assert conn.execute(sa.select(sa.func.count()).select_from(released_cells)).scalar_one() > 0
            for table in ("sessions", "messages", "dead_letters", "gaps"):
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sa.text(f"SELECT * FROM {table}"))
                conn.rollback()
                # The review's way round a SET ROLE: RESET ROLE on the same connection. The dashboard's
                # connection is its own log-in now: there is no other role to go back to.
                conn.execute(sa.text("RESET ROLE"))
                assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "clinic_dashboard"
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sa.text(f"SELECT * FROM {table}"))
                conn.rollback()
        dashboard.dispose()
        engines[0].dispose()


def test_session_rows_are_rolled_up_after_their_month_and_later_summaries_refused(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    clinic = Clinic(engine)
    ids = [clinic.session("north", "r1", "2026-10-06") for _ in range(12)]
    clinic.session("north", "r1", "2026-11-03")  # November: not released yet, kept
    release(engine, "2026-11-05", finest="week")
    before = csv_rows(engine, ("week", "month"))
    assert roll_up(engine, keep_days=60, today=dt.date(2026, 12, 3)) == []  # released 29 days ago: kept
    assert roll_up(engine, keep_days=60, today=dt.date(2027, 1, 4)) == ["2026-10"]
    with engine.begin() as conn:
        months = conn.execute(sa.select(sessions.c.month)).scalars().all()
    assert months == ["2026-11"]  # October's rows are gone...
    assert csv_rows(engine, ("week", "month")) == before  # ...its released numbers are not
    outcome = clinic.ingest.handle(
        "clinic/v1/north/r1/summary",
        summary("north", "r1", "north-r1", 99, ids[0], "2026-10-06").model_dump_json().encode(),
    )
    assert outcome.result == "invalid" and "month 2026-10 is rolled up" in outcome.detail
    assert roll_up(engine, keep_days=60, today=dt.date(2027, 1, 5)) == []


def _newest_released(engine: sa.Engine) -> list[tuple[Any, ...]]:
    newest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    with engine.begin() as conn:
        for row in conn.execute(sa.select(released_cells).order_by(released_cells.c.release_id)).mappings():
            newest[(row["level"], row["grain"], row["site"], row["room"], row["period"])] = (
                row["release_id"],
                row["sessions"],
                row["windows"],
            )
    return sorted((*key, *value) for key, value in newest.items())


def _shown(engine: sa.Engine) -> list[tuple[Any, ...]]:
    c = shown_cells.c
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(c.level, c.grain, c.site, c.room, c.period, c.release_id, c.sessions, c.windows)
        ).all()
    return sorted(tuple(r) for r in rows)


def test_the_dashboard_rollup_is_the_newest_version_of_every_released_cell(tmp_path: Path) -> None:
    """Releases and revisions keep ``shown_cells`` (which the pages read) equal to the newest released
    version of each cell; a version 2 database gets it filled when upgraded."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    clinic = Clinic(engine)
    for i in range(24):
        clinic.session("north", f"r{i % 2}", f"2026-03-{2 + i % 5:02d}", windows=2)
    assert release(engine, "2026-03-20", finest="week")
    first = _shown(engine)
    assert first and first == _newest_released(engine)
    for _ in range(6):  # late sessions of the released week: a revision
        clinic.session("north", "r0", "2026-03-03")
    assert release(engine, "2026-04-20", finest="week")
    assert _shown(engine) == _newest_released(engine) != first
    with engine.begin() as conn:
        conn.execute(shown_cells.delete())
        conn.execute(sa.text("UPDATE hub_settings SET schema_version = 2"))
    engine.dispose()
    upgraded = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    assert _shown(upgraded) == _newest_released(upgraded)
    upgraded.dispose()
