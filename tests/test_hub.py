"""The hub against a real mosquitto and real databases (SQLite files, a PostgreSQL server):
ingest, de-duplication, gaps, redelivery, and privacy by construction."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, stable_port, start_broker
from hub_helpers import Room, hub_config, postgres, running_hub, status, summary, wait_for

from edge.errors import ConfigError
from hub.config import parse_hub_config
from hub.metrics import HubMetrics
from hub.privacy import check, read_lattice
from hub.service import open_database
from hub.store import devices, gaps, sessions
from hub.views import GRAINS, LEVELS, view_name


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_rooms_publishing_through_a_real_broker_are_aggregated(tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    rooms = [
        Room("127.0.0.1", broker.port, site, room, f"dev-{site}-{room}")
        for site in ("north", "south")
        for room in ("r1", "r2")
    ]
    try:
        with running_hub(hub_config(tmp_path, broker.port)) as hub:
            engine = hub.ingest.engine
            for room in rooms:
                room.publish(
                    "status",
                    status(room.device, calibrated_at="2026-11-01T09:00:00+00:00").model_dump_json(),
                    retain=True,
                )
                for _ in range(3):
                    room.session("2026-11-16", windows=4)
            wait_for(lambda: _count(engine, sessions) == 12, what="12 sessions")
            wait_for(lambda: hub.ingest.metrics.summaries.labels("stored")._value.get() == 48, what="48 summaries")
            with engine.begin() as conn:
                rows = conn.execute(sa.select(devices)).mappings().all()
                per_session = conn.execute(sa.select(sessions.c.windows)).scalars().all()
            assert {r["device_id"] for r in rows} == {room.device for room in rooms}
            assert all(r["state"] == "online" and r["summaries"] == 12 and r["missing"] == 0 for r in rows)
            assert all(r["calibrated_at"] == "2026-11-01T09:00:00+00:00" and r["outbox"] == 0 for r in rows)
            assert per_session == [4] * 12
    finally:
        for room in rooms:
            room.close()
        broker.stop()


def test_duplicates_are_skipped_gaps_recorded_and_late_messages_fill_them(tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    room = Room("127.0.0.1", broker.port, "north", "r1", "dev-1")
    try:
        with running_hub(hub_config(tmp_path, broker.port)) as hub:
            engine = hub.ingest.engine
            sid = str(uuid.uuid4())
            msgs = {seq: summary("north", "r1", "dev-1", seq, sid, "2026-11-16") for seq in range(1, 11)}
            for seq in (1, 2, 3, 3, 2, 6, 7, 5, 10):  # 3 and 2 repeated; 4, 8, 9 never sent; 5 late
                room.publish("summary", msgs[seq].model_dump_json())
            wait_for(lambda: hub.ingest.metrics.summaries.labels("duplicate")._value.get() == 2, what="two duplicates")
            wait_for(lambda: hub.ingest.metrics.summaries.labels("stored")._value.get() == 7, what="seven stored")
            with engine.begin() as conn:
                dev = conn.execute(sa.select(devices)).mappings().one()
                holes = conn.execute(sa.select(gaps.c.from_seq, gaps.c.to_seq).order_by(gaps.c.from_seq)).all()
                windows = conn.execute(sa.select(sessions.c.windows)).scalar_one()
            assert dev["duplicates"] == 2 and dev["last_seq"] == 10 and dev["missing"] == 3
            assert [tuple(h) for h in holes] == [(4, 4), (8, 9)]
            assert windows == 7  # duplicates were not counted twice
    finally:
        room.close()
        broker.stop()


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("clinic/v1/north/r1/summary", b"{not json", "Expecting property name"),
        ("clinic/v1/north/r1/summary", b'{"schema_version": 2}', "validation error"),
        ("clinic/v1/north/r9/summary", None, "payload names north/r1, topic north/r9"),
        ("clinic/v1/north/r1/status", b'{"state": "melting"}', "validation error"),
    ],
)
def test_malformed_messages_are_counted_and_dropped(
    tmp_path: Path, topic: str, payload: bytes | None, reason: str
) -> None:
    from hub.ingest import Ingest

    engine = open_database(hub_config(tmp_path, 1883))
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    body = (
        payload
        if payload is not None
        else summary("north", "r1", "d", 1, str(uuid.uuid4()), "2026-11-16").model_dump_json().encode()
    )
    outcome = ingest.handle(topic, body)
    assert outcome.result == "invalid" and reason in outcome.detail
    assert _count(engine, sessions) == 0


def test_messages_published_while_the_hub_is_down_arrive_when_it_returns(tmp_path: Path) -> None:
    broker = start_broker(tmp_path, stable_port(), persist=tmp_path / "broker-state")
    room = Room("127.0.0.1", broker.port, "north", "r1", "dev-1")
    config = hub_config(tmp_path, broker.port)
    try:
        with running_hub(config) as hub:  # registers the persistent session and its subscriptions
            room.session("2026-11-16", windows=2)
            wait_for(lambda: hub.ingest.metrics.summaries.labels("stored")._value.get() == 2, what="first session")
        for _ in range(3):
            room.session("2026-11-17", windows=5)  # hub down: the broker queues these for it
        with running_hub(config) as hub:
            wait_for(lambda: hub.ingest.metrics.summaries.labels("stored")._value.get() == 15, what="queued summaries")
            assert _count(hub.ingest.engine, sessions) == 4
            with hub.ingest.engine.begin() as conn:
                assert conn.execute(sa.select(sa.func.sum(sessions.c.windows))).scalar_one() == 17
                assert conn.execute(sa.select(devices.c.missing)).scalar_one() == 0
    finally:
        room.close()
        broker.stop()


def _fill(engine: sa.Engine, seed: int, n: int) -> None:
    """Sessions spread thinly and unevenly over sites, rooms and days (many cells below k)."""
    rng = random.Random(seed)
    from hub.ingest import Ingest

    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    places = [(f"site{s}", f"room{r}") for s in range(3) for r in range(rng.randint(1, 4))]
    days = [f"2026-10-{d:02d}" for d in range(1, 29)]
    seq: dict[str, int] = {}
    for _ in range(n):
        site, room = rng.choice(places) if rng.random() < 0.7 else places[0]
        day = rng.choice(days) if rng.random() < 0.6 else days[3]
        device = f"{site}-{room}"
        seq[device] = seq.get(device, 0) + 1
        s = summary(site, room, device, seq[device], str(uuid.uuid4()), day, label=rng.choice(["happy", "sad", "calm"]))
        assert ingest.handle(f"clinic/v1/{site}/{room}/summary", s.model_dump_json().encode()).result == "stored"


@pytest.mark.parametrize(
    ("seed", "n", "k"), [(0, 150, 11), (1, 400, 11), (2, 400, 25), (3, 60, 11), (4, 900, 11), (5, 900, 40)]
)
def test_no_cell_below_k_and_nothing_derivable(tmp_path: Path, seed: int, n: int, k: int) -> None:
    engine = open_database(hub_config(tmp_path, 1883, k=k))
    _fill(engine, seed, n)
    with engine.connect() as conn:
        # As the dashboard queries: the views themselves never return a small cell...
        for level in LEVELS:
            for grain in GRAINS:
                counts = conn.execute(sa.text(f"SELECT sessions FROM {view_name(level, grain)}")).scalars().all()
                assert all(c >= k for c in counts), (level, grain, counts)
        # ...and after complementary suppression no shown total exposes a hidden one by subtraction.
        lattice = read_lattice(conn)
    assert check(lattice) == []
    assert sum(len(c) for c in lattice.cells.values()) > 0  # something is still shown
    # The suppression did work to do: the raw data has cells below k.
    with engine.begin() as conn:
        small = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM (SELECT site, room, day FROM sessions "
                "GROUP BY site, room, day HAVING COUNT(*) < :k) t"
            ),
            {"k": k},
        ).scalar_one()
    assert small > 0


def test_complementary_suppression_hides_the_second_smallest_child(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    with engine.begin() as conn:
        base = {
            c.name: 0 for c in sessions.columns if c.name not in ("session_id", "site", "room", "day", "week", "month")
        }
        for room, count in (("a", 30), ("b", 12), ("c", 5)):  # c is hidden; b would reveal it: site - a - b = 5
            for _ in range(count):
                conn.execute(
                    sessions.insert().values(
                        session_id=str(uuid.uuid4()),
                        site="s",
                        room=room,
                        day="2026-11-02",
                        week="2026-11-02",
                        month="2026-11",
                        **base,
                    )
                )
    with engine.connect() as conn:
        lattice = read_lattice(conn, ("day",))
    shown_rooms = {c.key[1] for c in lattice.table("room", "day")}
    assert shown_rooms == {"a"}  # b hidden too, so the hidden remainder is 17 >= 11
    assert [c.sessions for c in lattice.table("site", "day")] == [47]
    assert check(lattice) == []


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ({"k": 5}, r"privacy\.k = 5: Input should be greater than or equal to 11"),
        ({"finest_grain": "hour"}, "finest_grain"),
    ],
)
def test_k_cannot_go_below_eleven(tmp_path: Path, privacy: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_hub_config({"privacy": privacy}, tmp_path)


def test_k_only_grows_in_the_database(tmp_path: Path) -> None:
    open_database(hub_config(tmp_path, 1883, k=20))
    engine = open_database(hub_config(tmp_path, 1883, k=11))
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT k FROM hub_settings")).scalar_one() == 20


def test_postgresql_same_schema_and_the_dashboard_role_sees_only_views(tmp_path: Path) -> None:
    with postgres(tmp_path) as pg:
        engine = open_database(hub_config(tmp_path, 1883, url=pg.url))
        _fill(engine, 7, 300)
        with engine.connect() as conn:
            lattice = read_lattice(conn)
        assert check(lattice) == [] and lattice.table("clinic", "month")
        sqlite = open_database(hub_config(tmp_path / "lite", 1883))
        _fill(sqlite, 7, 300)
        with sqlite.connect() as conn:
            same = read_lattice(conn)
        assert {k: sorted(v) for k, v in same.cells.items()} == {k: sorted(v) for k, v in lattice.cells.items()}
        with engine.connect() as conn:
            conn.execute(sa.text("SET ROLE clinic_dashboard"))
            assert conn.execute(sa.text("SELECT COUNT(*) FROM agg_clinic_month")).scalar_one() >= 1
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text("SELECT * FROM sessions"))
        engine.dispose()


def test_example_config_is_valid(tmp_path: Path) -> None:
    from hub.config import load_hub_config

    config = load_hub_config(ROOT / "config" / "hub.example.toml")
    assert config.privacy.k == 11 and config.database.url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[privacy]\nk = 3\n", "privacy.k = 3"),
        ("[database]\nurl = 'mysql://x'\n", "must start with sqlite:/// or postgresql"),
        ("[web]\nprot = 1\n", "web.prot: unknown key"),
        ("not toml [", "cannot read hub config"),
    ],
)
def test_bad_hub_config_exits_2_with_the_reason(
    tmp_path: Path, text: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    from hub.cli import main

    path = tmp_path / "hub.toml"
    path.write_text(text)
    assert main(["--config", str(path), "serve"]) == 2
    assert message in caplog.text


def test_accounts_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import io

    from hub.cli import main
    from hub.users import authenticate

    path = tmp_path / "hub.toml"
    path.write_text(f"[database]\nurl = 'sqlite:///{tmp_path / 'hub.db'}'\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert main(["--config", str(path), "user", "alice", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(path), "user", "bob", "--password-stdin"]) == 2
    assert "at least 12 characters" in caplog.text
    engine = open_database(hub_config(tmp_path, 1883))
    assert authenticate(engine, "alice", "a long enough secret") == "admin"
    assert authenticate(engine, "alice", "wrong") is None and authenticate(engine, "bob", "short") is None


def test_unreachable_database_exits_3(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from conftest import free_port

    from hub.cli import main

    path = tmp_path / "hub.toml"
    path.write_text(f"[database]\nurl = 'postgresql+psycopg://hub@127.0.0.1:{free_port()}/x'\n")
    assert main(["--config", str(path), "serve"]) == 3
    assert "cannot open the hub database postgresql+psycopg://hub@127.0.0.1" in caplog.text
