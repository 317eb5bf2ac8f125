"""The hub against a real mosquitto and real databases (SQLite files, a PostgreSQL server):
ingest, de-duplication, gaps, redelivery, and privacy by construction."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, stable_port, start_broker
from hub_helpers import Room, hub_config, running_hub, status, summary, wait_for

from edge.errors import ConfigError
from hub.config import parse_hub_config
from hub.metrics import HubMetrics
from hub.service import open_database
from hub.store import devices, gaps, sessions


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
            assert {r["device_id"] for r in rows} == {f"{r.site}/{r.room}/{r.device}" for r in rooms}
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
        ("clinic/v1/north/r1/summary", b"{not json", "Invalid JSON"),
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


@pytest.mark.unit
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


@pytest.mark.unit
def test_example_config_is_valid(tmp_path: Path) -> None:
    from hub.config import load_hub_config

    config = load_hub_config(ROOT / "config" / "hub.example.toml")
    assert config.privacy.k == 11 and config.database.url.startswith("sqlite:///")


@pytest.mark.unit
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

    from clinic_common.auth import LoginRefusedError
    from hub.cli import main
    from hub.users import hub_accounts

    path = tmp_path / "hub.toml"
    path.write_text(f"[database]\nurl = 'sqlite:///{tmp_path / 'hub.db'}'\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert main(["--config", str(path), "user", "alice", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(path), "user", "bob", "--password-stdin"]) == 2
    assert "at least 12 characters" in caplog.text
    monkeypatch.setattr("sys.stdin", io.StringIO("carol's long secret\n"))
    assert main(["--config", str(path), "user", "carol", "--password-stdin"]) == 0
    accounts = hub_accounts(open_database(hub_config(tmp_path, 1883)))
    assert accounts.log_in("alice", "a long enough secret", "127.0.0.1")
    token = accounts.log_in("carol", "carol's long secret", "127.0.0.1")
    for user, password in (("alice", "wrong"), ("bob", "short")):
        with pytest.raises(LoginRefusedError):
            accounts.log_in(user, password, "127.0.0.1")
    assert main(["--config", str(path), "user", "carol", "--disable"]) == 0
    assert accounts.sessions.get(token) is None  # her log-in ended with the change
    with pytest.raises(LoginRefusedError):
        accounts.log_in("carol", "carol's long secret", "127.0.0.1")
    assert main(["--config", str(path), "user", "alice", "--delete"]) == 2  # the last administrator
    assert "last enabled admin" in caplog.text
    assert main(["--config", str(path), "user", "carol", "--delete"]) == 0
    assert [a.username for a in accounts.list()] == ["alice"]
    actions = [e.action for e in accounts.audit.recent()]
    assert actions.count("account created") == 2 and "account disabled" in actions and "account deleted" in actions


@pytest.mark.unit
def test_unreachable_database_exits_3(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from conftest import free_port

    from hub.cli import main

    path = tmp_path / "hub.toml"
    path.write_text(f"[database]\nurl = 'postgresql+psycopg://hub@127.0.0.1:{free_port()}/x'\n")
    assert main(["--config", str(path), "serve"]) == 3
    assert "cannot open the hub database postgresql+psycopg://hub@127.0.0.1" in caplog.text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "state_directory", "expected"),
    [
        ("sqlite:///hub.db", None, "{config}/hub.db"),
        ("sqlite:///hub.db", "{state}", "{state}/hub.db"),  # under systemd's StateDirectory=
        ("sqlite:///hub.db", "{state}:/var/lib/other", "{state}/hub.db"),
        ("sqlite:////srv/hub/hub.db", "{state}", "/srv/hub/hub.db"),
    ],
)
def test_a_relative_sqlite_database_lives_in_the_state_folder_under_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, state_directory: str | None, expected: str
) -> None:
    folders = {"config": str(tmp_path / "etc"), "state": str(tmp_path / "state")}
    if state_directory is None:
        monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    else:
        monkeypatch.setenv("STATE_DIRECTORY", state_directory.format(**folders))
    config = parse_hub_config({"database": {"url": url}}, Path(folders["config"]))
    assert config.database.url == "sqlite:///" + expected.format(**folders)


def test_the_hub_s_sqlite_commits_survive_a_power_cut(tmp_path: Path) -> None:
    """A message is acknowledged to the broker after its commit: the commit must be on disk
    (synchronous=FULL with WAL; NORMAL can lose the last commits on power loss)."""
    engine = open_database(hub_config(tmp_path, 1883))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
