"""The hub's backup: one age-encrypted archive (:mod:`clinic_common.backup.sealed`), taken while the
hub runs, restored onto a fresh install.

What is in it (``manifest.json`` lists every file with its SHA-256):

* ``database/hub.db`` (SQLite): the database, copied with SQLite's online backup API, so ingest and
  the dashboard go on writing;
* ``database/hub.pgdump`` (PostgreSQL): ``pg_dump --format=custom`` of the hub's database, one
  consistent snapshot, without owners or grants (the hub grants its dashboard role again at start);
* ``hub.toml``: the configuration it ran with, for reference (restore does not overwrite a config).

The database holds everything the hub keeps: session rows, releases and their cells, retractions,
rooms' health, dashboard accounts and the access log. Not in it: database passwords, TLS keys.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from clinic_common import __version__
from clinic_common.backup import sealed
from clinic_common.errors import ConfigError, StoreError
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.service import apply_retention, database_engine, open_database
from hub.store import SCHEMA_VERSION
from hub.users import hub_accounts

logger = logging.getLogger(__name__)

KIND = "clinic-hub"
PREFIX = "clinic-hub"  # a dated backup's name: clinic-hub-<UTC time>.clinic-backup
DUMP = {"sqlite": "database/hub.db", "postgresql": "database/hub.pgdump"}


@dataclass(frozen=True)
class HubBackupSummary:
    path: Path
    dialect: str
    sessions: int
    schema_version: int
    bytes: int


def _contents(engine: sa.Engine) -> tuple[int, int]:
    """(schema version, session rows) of a hub database; (0, 0) where the hub never started."""
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("hub_settings"):
                return 0, 0
            version = conn.execute(sa.text("SELECT schema_version FROM hub_settings WHERE id = 1")).scalar()
            count = conn.execute(sa.text("SELECT COUNT(*) FROM sessions")).scalar_one()
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"cannot read the hub database {where}: {str(exc).splitlines()[0]}") from None
    return int(version or 0), int(count)


def _pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: Debian's wrapper on PATH (it picks the client for the server)."""
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} is not installed: apt install postgresql-client (the server's major version or newer)"
        )
    return found


def _pg_args(engine: sa.Engine) -> tuple[list[str], dict[str, str]]:
    """Connection options and environment (the password in PGPASSWORD, never on the command line)."""
    url = engine.url
    args: list[str] = []
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ, "PGAPPNAME": "clinic-hub-backup"}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _pg_run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise StoreError(f"{what} failed: {detail[-1] if detail else f'exit {done.returncode}'}")


def _pg_dump(engine: sa.Engine, dump: Path) -> tuple[int, int]:
    """``pg_dump`` of the hub's database into ``dump``; returns (schema version, session rows) as of
    the dump's snapshot: the counts are read in a transaction whose snapshot pg_dump then uses."""
    args, env = _pg_args(engine)
    command = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", *args]
    with engine.connect() as conn, conn.begin():
        conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
        version = conn.execute(sa.text("SELECT schema_version FROM hub_settings WHERE id = 1")).scalar_one()
        count = conn.execute(sa.text("SELECT COUNT(*) FROM sessions")).scalar_one()
        # The snapshot lives as long as this transaction: pg_dump runs inside it.
        database = ["--dbname", str(engine.url.database), "--snapshot", str(snapshot)]
        _pg_run([*command, *database, "--file", str(dump)], env, "pg_dump")
    return int(version), int(count)


def create_hub_backup(config: HubConfig, config_path: Path, out: Path, recipient: str) -> HubBackupSummary:
    """Write an encrypted backup of the hub's database to ``out`` (a file, or a folder to name one in).

    Raises:
        ConfigError: ``recipient`` is not an age recipient, ``out`` exists, or pg_dump is missing.
        StoreError: the database cannot be read.
    """
    out = sealed.destination(out, PREFIX)
    engine = database_engine(config)
    dialect = engine.dialect.name
    try:
        schema, count = _contents(engine)
        if schema == 0:
            raise StoreError("the hub database holds no hub yet (has clinic-hub started?): nothing to back up")
        with sealed.work_folder(out.parent, ".clinic-backup-") as tmp:
            folder = Path(tmp)
            dump = folder / DUMP[dialect]
            dump.parent.mkdir(parents=True)
            if dialect == "sqlite":
                sealed.online_copy(Path(str(engine.url.database)), dump)
                copy = sa.create_engine(f"sqlite:///file:{dump}?mode=ro&uri=true")  # what the backup holds
                try:
                    schema, count = _contents(copy)
                finally:
                    copy.dispose()
            else:
                schema, count = _pg_dump(engine, dump)
            manifest = {
                "format": sealed.FORMAT,
                "kind": KIND,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "software": __version__,
                "dialect": dialect,
                "schema_version": schema,
                "sessions": count,
            }
            size = sealed.seal({DUMP[dialect]: dump, "hub.toml": config_path}, manifest, out, recipient, folder)
    finally:
        engine.dispose()
    logger.info("hub backup written to %s (%s, %d session rows, schema %d)", out, dialect, count, schema)
    return HubBackupSummary(out, dialect, count, schema, size)


def _refuse(manifest: dict[str, object], backup: Path, dialect: str) -> int:
    """The backup's schema version, or why it cannot be restored here."""
    schema = sealed.restorable_schema(manifest, backup, KIND, SCHEMA_VERSION)
    if manifest.get("dialect") != dialect:
        raise ConfigError(
            f"{backup} holds a {manifest.get('dialect')} database and this hub is configured for {dialect}: "
            f"restore it onto a hub with the same database.url kind"
        )
    return schema


def restore_hub_backup(config: HubConfig, backup: Path, identity_file: Path) -> HubBackupSummary:
    """Put a backup's database in place for the hub ``config`` describes, migrate it, grant the
    dashboard's role and apply the retention rules at once.

    Raises:
        ConfigError: the backup cannot be decrypted or is damaged, is not the hub's, comes from a
            newer schema or another kind of database, or the hub already holds sessions.
        StoreError: the database cannot be written.
    """
    engine = database_engine(config)
    dialect = engine.dialect.name
    try:
        if _contents(engine)[1] > 0:
            where = engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"{where} already holds sessions; restore onto a fresh hub database (move it away first)")
        scratch = Path(str(engine.url.database)).parent if dialect == "sqlite" else out_of_tree()
        scratch.mkdir(parents=True, exist_ok=True)
        with sealed.work_folder(scratch, ".clinic-restore-") as tmp:
            folder = Path(tmp)
            manifest = sealed.unseal(backup, identity_file, folder, KIND)
            schema = _refuse(manifest, backup, dialect)
            dump = folder / "files" / DUMP[dialect]
            if dialect == "sqlite":
                engine.dispose()
                target = Path(str(engine.url.database))
                for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                    stale.unlink(missing_ok=True)
                dump.replace(target)
                target.chmod(0o600)
            else:
                args, env = _pg_args(engine)
                command = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--clean", "--if-exists", *args]
                _pg_run(
                    [
                        *command,
                        "--single-transaction",
                        "--exit-on-error",
                        "--dbname",
                        str(engine.url.database),
                        str(dump),
                    ],
                    env,
                    "pg_restore",
                )
    finally:
        engine.dispose()
    restored = open_database(config)  # migrates an older schema, grants the dashboard's role again
    try:
        apply_retention(
            restored, config, Ingest.configured(restored, HubMetrics(), config), hub_accounts(restored, config.web)
        )
        _version, count = _contents(restored)
    finally:
        restored.dispose()
    logger.info("restored %s: %d session rows kept after retention (schema %d)", backup, count, schema)
    return HubBackupSummary(backup, dialect, count, schema, backup.stat().st_size)


def out_of_tree() -> Path:
    """Scratch space for a PostgreSQL restore (the dump is unpacked there, owner-only, then deleted)."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path(tempfile.gettempdir())
