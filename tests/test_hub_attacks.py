"""The outside review's attacks on the hub's privacy rule, each replayed against the real ingest and
releases: padding a room with empty or short sessions, switching the grain or the mode mid-month,
two release runs at once, and a session withdrawn after its period was held back."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hub_adversary import Clinic, csv_rows, days_between, exposures, release
from hub_helpers import hub_config, status, summary

import hub.release
from clinic_common.errors import ConfigError
from hub.cli import main as hub_main
from hub.dashboard import published
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.periods import GRAINS
from hub.release import PrivacySettingsError, configured_policy, policy_for, release_due
from hub.service import open_database
from hub.store import devices, gaps, releases, retractions, sessions


def _room_cells(engine: sa.Engine, room: str) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        shown = published(conn, GRAINS)
    return [(grain, c.period, c.sessions) for grain in GRAINS for c in shown.table("room", grain) if c.dims[1] == room]


@pytest.mark.parametrize(
    ("case", "padding"),
    [
        ("ten empty sessions", {"empty": True, "windows": 40}),  # nobody in view: windows, no emotion result
        ("ten one-window sessions", {"empty": False, "windows": 1}),  # a moment each beside 50 minutes
    ],
)
def test_padding_a_room_week_does_not_release_one_client(tmp_path: Path, case: str, padding: dict[str, object]) -> None:
    """One 50-minute session (1,200 windows) and ten padding sessions in a room-week was released as
    "11 sessions" whose shares were that one client's. It is now held back, while a week of eleven
    ordinary sessions in the next room is shown."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    clinic = Clinic(engine)
    client = str(uuid.uuid4())
    clinic.send("north", "r1", "2026-10-06", client, label="sad", n=1200)
    for _ in range(10):
        sid = str(uuid.uuid4())
        clinic.send("north", "r1", "2026-10-07", sid, empty=bool(padding["empty"]), n=int(padding["windows"]))  # type: ignore[call-overload]
    for _ in range(11):  # a room of ordinary sessions: 40 analysed windows each
        clinic.send("north", "r2", "2026-10-07", str(uuid.uuid4()), label="calm", n=40)
    assert release(engine, "2026-11-05", finest="week")
    assert exposures(engine) == []
    assert _room_cells(engine, "r1") == [], case
    assert ("week", "2026-10-05", 11) in _room_cells(engine, "r2")
    # The clinic's week, 1,200 of whose 1,640 analysed windows are the client's, is held back too.
    assert not [r for r in csv_rows(engine, ("week",)) if r[0] in ("clinic", "site")]


@pytest.mark.parametrize(
    ("before", "after", "days"),
    [
        ("week", "month", ("2026-11-03", "2026-11-10", "2026-11-17", "2026-11-24")),  # the review's case
        ("day", "week", ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05")),
    ],
)
def test_a_coarser_grain_mid_month_does_not_reveal_a_held_back_period(
    tmp_path: Path, before: str, after: str, days: tuple[str, ...]
) -> None:
    """Three periods released with 11 sessions each, the fourth held back (1 session); the admin switches
    to a coarser (more private) grain. The coarser cell minus the saved finer ones was the held-back
    session (sad 73 % against a true 72 %): it is now held back too."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain=before))
    clinic = Clinic(engine)
    for day in days[:3]:
        for _ in range(11):
            clinic.session("north", "r1", day, label="happy")
    lone = clinic.session("north", "r1", days[3], label="sad")
    assert release(engine, "2026-11-27", finest=before)  # the first three released, the fourth held back
    shown = {(g, p) for g, p, _ in _room_cells(engine, "r1")}
    assert len(shown) == 3 and all(p != days[3] for _, p in shown)
    release(engine, "2026-12-20", finest=after)
    assert exposures(engine) == []
    with engine.begin() as conn:
        recorded = conn.execute(sa.select(releases.c.finest).distinct()).scalars().all()
        assert conn.execute(sa.select(sessions.c.sealed_in).where(sessions.c.session_id == lone)).scalar_one()
    assert sorted(recorded) == sorted({before, after})  # each release records the grain it was made with
    assert all(g == before for g, _, _ in _room_cells(engine, "r1")), "nothing coarser may be shown"


def test_a_mode_or_epsilon_change_waits_for_the_open_month(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    clinic = Clinic(engine)
    for _ in range(12):
        clinic.session("north", "r1", "2026-11-03")
    assert release(engine, "2026-11-12", finest="week")  # a week of November is out; the month is open
    with pytest.raises(PrivacySettingsError, match=r"month 2026-11 is partly released with privacy.mode = 'k'"):
        policy_for(engine, "week", 2, mode="dp", epsilon=1.0)
    path = tmp_path / "hub.toml"
    path.write_text(
        f"[database]\nurl = 'sqlite:///{tmp_path / 'hub.db'}'\n[privacy]\nmode = 'dp'\n[metrics]\nport = 0\n"
    )
    assert hub_main(["--config", str(path), "release"]) == ConfigError.exit_code
    assert "keep the old setting until month 2026-11 is released" in caplog.text.lower()
    release(engine, "2026-12-03", finest="week")  # the month is released under k...
    assert policy_for(engine, "week", 2, mode="dp", epsilon=1.0).mode == "dp"  # ...then the change is taken
    # In dp mode, epsilon waits for the month the same way.
    dp = open_database(hub_config(tmp_path / "dp", 1883, mode="dp", epsilon=1.0, finest_grain="week"))
    dp_clinic = Clinic(dp)
    for _ in range(30):
        dp_clinic.session("north", "r1", "2026-11-03")
    assert release_due(dp, policy_for(dp, "week", 2, mode="dp", epsilon=1.0), dt.date(2026, 11, 12))
    with pytest.raises(PrivacySettingsError, match="epsilon"):
        policy_for(dp, "week", 2, mode="dp", epsilon=2.0)


def test_two_release_runs_at_once_release_a_dp_period_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hourly run and `clinic-hub release` both list the same due week before either releases it
    (a barrier holds each until both have listed): the week is released once, epsilon spent once."""
    config = hub_config(tmp_path, 1883, mode="dp", epsilon=1.0, finest_grain="week")
    engine = open_database(config)
    clinic = Clinic(engine)
    for _ in range(40):
        clinic.session("north", "r1", "2026-10-06")
    listed = threading.Barrier(2, timeout=60)
    due = hub.release._due

    def both_list_first(*args: object, **kwargs: object) -> list[str]:
        out = due(*args, **kwargs)  # type: ignore[arg-type]
        if out:
            listed.wait()
        return out

    monkeypatch.setattr(hub.release, "_due", both_list_first)
    policy = configured_policy(engine, config.privacy)
    results: list[object] = []
    runs = [
        threading.Thread(target=lambda: results.append(release_due(engine, policy, dt.date(2026, 10, 14))))
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert len(results) == 2
    with engine.begin() as conn:
        made = conn.execute(sa.select(releases.c.grain, releases.c.period, releases.c.version)).all()
    assert sorted(made) == [("week", "2026-10-05", 1)]


def test_a_session_withdrawn_after_its_held_back_week_is_not_in_the_month(tmp_path: Path) -> None:
    """Week 1 (5 sessions) and week 2 (10) are released, both held back; one session of week 1 is then
    withdrawn; the month (shown: the weeks cannot be told apart) counts the 14 that remain."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    clinic = Clinic(engine)
    first = [clinic.session("north", "r1", "2026-11-03") for _ in range(5)]
    for _ in range(10):
        clinic.session("north", "r1", "2026-11-10")
    assert release(engine, "2026-11-19", finest="week")
    assert _room_cells(engine, "r1") == []  # both weeks held back (5 and 10 < 11)...
    with engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(sessions.c.sealed_in.is_not(None))).scalar_one() == 15
    clinic.retract("north", "r1", first[0])  # ...then a client withdraws
    release(engine, "2026-12-03", finest="week")
    assert ("month", "2026-11", 14) in _room_cells(engine, "r1")
    assert exposures(engine) == []
    with engine.begin() as conn:
        row = conn.execute(sa.select(retractions.c.dropped_parts, retractions.c.released_parts)).one()
    assert tuple(row) == (1, 0)  # dropped: no released cell held it


def test_a_session_shown_before_its_withdrawal_stays_in_released_cells_only(tmp_path: Path) -> None:
    """The other side of the rule: a session inside a shown week stays behind that week, unlinked from
    the room's session, so the week cannot be differenced against the month."""
    engine = open_database(hub_config(tmp_path, 1883, finest_grain="week"))
    clinic = Clinic(engine)
    ids = [clinic.session("north", "r1", "2026-11-03") for _ in range(12)]
    assert release(engine, "2026-11-12", finest="week")
    clinic.retract("north", "r1", ids[0])
    release(engine, "2026-12-03", finest="week")
    assert ("week", "2026-11-02", 12) in _room_cells(engine, "r1")
    assert ("month", "2026-11", 12) in _room_cells(engine, "r1")
    assert exposures(engine) == []
    with engine.begin() as conn:
        assert conn.execute(sa.select(sessions.c.session_id).where(sessions.c.session_id == ids[0])).first() is None


@pytest.mark.unit
def test_days_between_is_inclusive() -> None:
    assert days_between("2026-11-30", "2026-12-02") == ["2026-11-30", "2026-12-01", "2026-12-02"]


def _handle(ingest: Ingest, site: str, room: str, kind: str, body: str) -> str:
    return ingest.handle(f"clinic/v1/{site}/{room}/{kind}", body.encode()).result


def test_a_room_naming_another_rooms_device_id_blocks_nothing(tmp_path: Path) -> None:
    """Room 3's appliance (its broker identity may write only room 3's topics) sends a status naming
    room 4's device id before room 4 ever connected. Before, the id then belonged to room 3 and every
    message of room 4's appliance was refused; now a device is known by its room."""
    engine = open_database(hub_config(tmp_path, 1883))
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    assert _handle(ingest, "north", "room-3", "status", status("edge-r4").model_dump_json()) == "stored"
    assert _handle(ingest, "north", "room-4", "status", status("edge-r4").model_dump_json()) == "stored"
    body = summary("north", "room-4", "edge-r4", 1, str(uuid.uuid4()), "2026-11-03").model_dump_json()
    assert _handle(ingest, "north", "room-4", "summary", body) == "stored"
    with engine.begin() as conn:
        rows = sorted(
            tuple(r) for r in conn.execute(sa.select(devices.c.device_id, devices.c.room, devices.c.summaries))
        )
    assert rows == [("north/room-3/edge-r4", "room-3", 0), ("north/room-4/edge-r4", "room-4", 1)]


def test_a_session_belongs_to_the_device_that_published_it(tmp_path: Path) -> None:
    """A summary naming another device but the same session was stored as a second device of that
    session (a phantom device, with a gap of every earlier seq): it is refused, and no device appears."""
    engine = open_database(hub_config(tmp_path, 1883))
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    session = str(uuid.uuid4())
    for seq in range(1, 6):
        body = summary("north", "r1", "d1", seq, session, "2026-11-03").model_dump_json()
        assert _handle(ingest, "north", "r1", "summary", body) == "stored"
    phantom = summary("north", "r1", "d9", 40, session, "2026-11-03").model_dump_json()
    outcome = ingest.handle("clinic/v1/north/r1/summary", phantom.encode())
    assert outcome.result == "invalid" and "belongs to device d1 of north/r1" in outcome.detail
    with engine.begin() as conn:
        assert conn.execute(sa.select(devices.c.device_id)).scalars().all() == ["north/r1/d1"]
        assert conn.execute(sa.select(sa.func.count()).select_from(gaps)).scalar_one() == 0
        assert conn.execute(sa.select(sessions.c.windows).where(sessions.c.session_id == session)).scalar_one() == 5
