"""The hub's backup and restore on real databases (SQLite and a real PostgreSQL server, pg_dump and
pg_restore): a backup taken while summaries are being ingested restores onto a fresh database with
its sessions, releases and accounts; the restored hub ingests again and its dashboard role reads
the releases; the retention rules apply at once; a wrong key, a damaged file, a room's backup, a
newer schema, another kind of database and a hub that already holds sessions are refused, and a
hub refuses at start a database a newer release wrote."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from hub_adversary import Clinic, release
from hub_helpers import hub_config, postgres

from clinic_common.backup import sealed
from clinic_common.backup.keys import generate
from clinic_common.errors import ConfigError
from hub.backup import create_hub_backup, restore_hub_backup
from hub.cli import main
from hub.config import HubConfig
from hub.grants import as_dashboard
from hub.service import dashboard_password, open_database
from hub.store import SCHEMA_VERSION, dead_letters, hub_settings, releases, sessions
from hub.users import add_user, hub_accounts

PASSWORD = "a long enough password for the hub"


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def databases(dialect: str, tmp_path: Path) -> Iterator[tuple[str | None, str | None]]:
    """(source URL, fresh target URL): None for SQLite files under each config's folder."""
    if dialect == "sqlite":
        yield None, None
        return
    with ExitStack() as stack:
        pg = stack.enter_context(postgres(tmp_path / "pg"))
        admin = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE clinic_hub_restored"))
        admin.dispose()
        yield pg.url, pg.url.rsplit("/", 1)[0] + "/clinic_hub_restored"


def _config(folder: Path, url: str | None) -> HubConfig:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hub.toml").write_text("# the hub's configuration, for the backup's reference\n", encoding="utf-8")
    return hub_config(folder, 1883, url=url)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _old(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).isoformat(timespec="seconds")


def test_a_backup_under_ingest_restores_onto_a_fresh_hub(
    tmp_path: Path, databases: tuple[str | None, str | None]
) -> None:
    source_url, target_url = databases
    config = _config(tmp_path / "hub", source_url)
    engine = open_database(config)
    clinic = Clinic(engine)
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):
        for _ in range(11):
            clinic.session("north", "r1", day, label="happy", windows=2)
    shown = release(engine, "2026-03-20", finest="week")
    assert shown, "the fixture's weeks were released"
    add_user(engine, "admin", PASSWORD, "admin")
    recent = _old(1)  # a refused message's record: kept dead_letter_days (90), the older one goes
    with engine.begin() as conn:
        letter = {"topic": "clinic/v1/x/y/summary", "reason": "schema: bad", "bytes": 1, "sha256": "0" * 64}
        conn.execute(dead_letters.insert(), [{**letter, "received_at": _old(400)}, {**letter, "received_at": recent}])
    before = _count(engine, sessions)

    # Ingest goes on while the backup runs: a writer that starts before it and stops after it.
    started, stop = threading.Event(), threading.Event()

    def ingest() -> None:
        writer = Clinic(engine)
        while not stop.is_set():
            writer.session("south", "r2", "2026-03-05")
            started.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    assert started.wait(60)
    key = tmp_path / "backup.key"
    recipient = generate(key)
    try:
        done = create_hub_backup(config, tmp_path / "hub" / "hub.toml", tmp_path, recipient)
    finally:
        stop.set()
        thread.join()
    after = _count(engine, sessions)
    engine.dispose()
    assert done.path.name.startswith("clinic-hub-") and done.path.stat().st_mode & 0o777 == 0o600
    assert done.schema_version == SCHEMA_VERSION and before < done.sessions <= after
    assert b"north" not in done.path.read_bytes()  # encrypted, not a plain tar or dump

    fresh = _config(tmp_path / "fresh", target_url)
    open_database(fresh).dispose()  # a fresh install whose hub started once: empty tables, replaced
    restored = restore_hub_backup(fresh, done.path, key)
    assert restored.sessions == done.sessions
    engine = open_database(fresh)
    try:
        assert _count(engine, sessions) == done.sessions
        assert _count(engine, releases) >= len(shown)
        with engine.connect() as conn:
            assert conn.execute(sa.select(dead_letters.c.received_at)).scalars().all() == [recent]
        assert hub_accounts(engine).log_in("admin", PASSWORD, "127.0.0.1")
        assert Clinic(engine).session("north", "r1", "2026-03-06")  # the restored hub ingests
        if engine.dialect.name == "postgresql":  # its dashboard role was granted again
            dashboard = as_dashboard(engine, dashboard_password(fresh))
            with dashboard.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(releases)).scalar_one() >= len(shown)
                with pytest.raises(sa.exc.ProgrammingError):
                    conn.execute(sa.select(sessions.c.session_id).limit(1)).all()
            dashboard.dispose()
    finally:
        engine.dispose()
    with pytest.raises(ConfigError, match="already holds sessions"):
        restore_hub_backup(fresh, done.path, key)


def test_refusals(tmp_path: Path, databases: tuple[str | None, str | None], dialect: str) -> None:
    source_url, target_url = databases
    config = _config(tmp_path / "hub", source_url)
    engine = open_database(config)
    Clinic(engine).session("north", "r1", "2026-03-02")
    key = tmp_path / "backup.key"
    recipient = generate(key)
    good = create_hub_backup(config, tmp_path / "hub" / "hub.toml", tmp_path / "good.clinic-backup", recipient)
    with engine.begin() as conn:
        conn.execute(hub_settings.update().values(schema_version=SCHEMA_VERSION + 1))
    newer = create_hub_backup(config, tmp_path / "hub" / "hub.toml", tmp_path / "newer.clinic-backup", recipient)
    engine.dispose()
    with pytest.raises(ConfigError, match="written by a newer clinic-hub"):  # a hub downgraded too far
        open_database(config)
    other_key = tmp_path / "other.key"
    generate(other_key)
    damaged = tmp_path / "damaged.clinic-backup"
    damaged.write_bytes(good.path.read_bytes()[:-200])
    room = tmp_path / "room.clinic-backup"
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "x.db").write_bytes(b"not a hub")
    sealed.seal(
        {"database/x.db": tmp_path / "w" / "x.db"},
        {"format": 1, "kind": "clinic-edge"},
        room,
        recipient,
        tmp_path / "w",
    )
    cases: list[tuple[Path, Path, str]] = [
        (good.path, other_key, "cannot decrypt"),
        (damaged, key, "cannot decrypt"),
        (room, key, "clinic-edge backup, not a clinic-hub one"),
        (newer.path, key, "newer clinic-hub"),
    ]
    fresh = _config(tmp_path / "fresh", target_url)
    for backup, identity, message in cases:
        with pytest.raises(ConfigError, match=message):
            restore_hub_backup(fresh, backup, identity)
    with pytest.raises(ConfigError, match="exists"):
        create_hub_backup(config, tmp_path / "hub" / "hub.toml", good.path, recipient)
    if dialect == "postgresql":  # a PostgreSQL dump does not go into a SQLite hub
        with pytest.raises(ConfigError, match="holds a postgresql database"):
            restore_hub_backup(_config(tmp_path / "other", None), good.path, key)
    # Nothing was written by a refused restore: the fresh hub is still empty and takes the good one.
    assert restore_hub_backup(fresh, good.path, key).sessions == 1


def test_the_commands(tmp_path: Path) -> None:
    config = _config(tmp_path / "hub", None)
    engine = open_database(config)
    Clinic(engine).session("north", "r1", "2026-03-02")
    engine.dispose()
    toml = tmp_path / "hub.toml"
    toml.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\n[database]\nurl = "sqlite:///{tmp_path / "hub" / "hub.db"}"\n', encoding="utf-8"
    )
    key, out = tmp_path / "key", tmp_path / "backups"
    out.mkdir()
    assert main(["--config", str(toml), "backup-key", "--out", str(key)]) == 0
    assert main(["--config", str(toml), "backup-key", "--out", str(key)]) == 2  # never overwritten
    assert main(["--config", str(toml), "backup", "--recipient", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    recipient = next(ln for ln in key.read_text().splitlines() if "age1" in ln).split()[-1]
    for _ in range(3):
        assert main(["--config", str(toml), "backup", "--recipient", recipient, "--out", str(out), "--keep", "2"]) == 0
    kept = sorted(out.glob("clinic-hub-*.clinic-backup"))
    assert len(kept) == 2
    fresh = tmp_path / "fresh.toml"
    fresh.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\n[database]\nurl = "sqlite:///{tmp_path / "fresh.db"}"\n', encoding="utf-8"
    )
    assert main(["--config", str(fresh), "restore", str(kept[-1]), "--identity", str(key)]) == 0
    assert main(["--config", str(fresh), "restore", str(kept[-1]), "--identity", str(key)]) == 2
