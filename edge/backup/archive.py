"""A room's backup: one age-encrypted tar file, taken while the room runs, restored onto a fresh install.

What is in it (``manifest.json`` lists every file with its SHA-256):

* ``database/<storage.database>``: the room's SQLite database (sessions, windows, transcripts if kept,
  the outbox not yet published), copied with SQLite's online backup API, so a session being
  recorded is caught at a consistent point and never paused;
* ``database/<review.database>``: the review page's accounts and access log, the same way;
* ``staff-voices/*.json``: the enrolled staff voices (embeddings only, never audio);
* ``room-profile.json``: the room's calibration profile, when there is one;
* ``trusted-keys/*``: the public keys the room trusts model packs from;
* ``room.toml``: the configuration it ran with, for reference (restore does not overwrite a config).

Not in it: the model pack (reinstalled with the software), private signing keys, TLS keys (a fresh
install makes its own), rendered reports (made again from the database). The whole tar is encrypted
to an age recipient before it touches the destination: clinic IT keeps the identity away from the
room.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from clinic_common.backup import sealed
from edge import __version__
from edge.channels.sessions import staff_dir
from edge.config.models import AppConfig
from edge.config.profile import profile_path
from edge.errors import ConfigError, StoreError
from edge.review.staff import staff_database
from edge.store.db import Store
from edge.store.migrations import SCHEMA_VERSION

logger = logging.getLogger(__name__)

KIND = "clinic-edge"


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    files: int
    sessions: int
    schema_version: int
    bytes: int


def _schema_and_sessions(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    except sqlite3.Error:
        return 0, 0
    finally:
        conn.close()
    return int(version), int(sessions)


def _gather(config: AppConfig, config_path: Path, folder: Path) -> dict[str, Path]:
    """The files of a backup, copied into ``folder``: archive name -> copy."""
    files: dict[str, Path] = {}
    database = config.storage.state_dir / config.storage.database
    if not database.is_file():
        raise StoreError(f"no database at {database}: nothing to back up (has the room run?)")
    for name, source in ((config.storage.database, database), (config.review.database, staff_database(config))):
        if source.is_file():
            copy = folder / "database" / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            sealed.online_copy(source, copy)
            files[f"database/{name}"] = copy
    voices = staff_dir(config)
    for voice in sorted(voices.glob("*.json")) if voices.is_dir() else []:
        files[f"staff-voices/{voice.name}"] = voice
    profile = profile_path(config_path)
    if profile.is_file():
        files["room-profile.json"] = profile
    for key in config.models.trusted_keys:
        if key.is_file():
            files[f"trusted-keys/{key.name}"] = key
    files["room.toml"] = config_path
    return files


def backup_prefix(config: AppConfig) -> str:
    """``<site>-<room>``: a room's backups are ``<site>-<room>-<UTC time>.clinic-backup``."""
    return f"{config.room.site}-{config.room.room}"


def create_backup(config: AppConfig, config_path: Path, out: Path, recipient: str) -> BackupSummary:
    """Write an encrypted backup of the room to ``out`` (a file, or a folder to name one in; written
    beside it, then renamed).

    Raises:
        ConfigError: ``recipient`` is not an age recipient, or ``out`` exists.
        StoreError: no database, or it cannot be read.
    """
    out = sealed.destination(out, backup_prefix(config))
    with sealed.work_folder(out.parent, ".clinic-backup-") as tmp:
        folder = Path(tmp)
        files = _gather(config, config_path, folder)
        schema, sessions = _schema_and_sessions(files[f"database/{config.storage.database}"])
        manifest = {
            "format": sealed.FORMAT,
            "kind": KIND,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "software": __version__,
            "room": {"site": config.room.site, "room": config.room.room, "device_id": config.room.device_id},
            "database": config.storage.database,
            "review_database": config.review.database,
            "schema_version": schema,
            "sessions": sessions,
        }
        size = sealed.seal(files, manifest, out, recipient, folder)
    logger.info(
        "backup of %s/%s written to %s (%d sessions, schema %d)",
        config.room.site,
        config.room.room,
        out,
        sessions,
        schema,
    )
    return BackupSummary(out, len(files), sessions, schema, size)


def restore_backup(config: AppConfig, config_path: Path, backup: Path, identity_file: Path) -> BackupSummary:
    """Put a backup's state in place for the room ``config`` describes, migrate it and apply the
    room's retention at once.

    Raises:
        ConfigError: the backup cannot be decrypted or is damaged, comes from a newer schema, or
            the room already has recorded sessions (restore is for a fresh install).
    """
    state = config.storage.state_dir
    database = state / config.storage.database
    if database.is_file() and _schema_and_sessions(database)[1] > 0:
        raise ConfigError(
            f"{database} already holds sessions; restore onto a fresh install (move that database away first)"
        )
    state.mkdir(parents=True, exist_ok=True)
    with sealed.work_folder(state, ".clinic-restore-") as tmp:
        folder = Path(tmp)
        manifest = sealed.unseal(backup, identity_file, folder, KIND)
        schema = sealed.restorable_schema(manifest, backup, KIND, SCHEMA_VERSION, unmarked_ok=True)
        files = folder / "files"
        placed = 0
        for name, target in (
            (f"database/{manifest['database']}", database),
            (f"database/{manifest['review_database']}", staff_database(config)),
        ):
            if (files / name).is_file():
                for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                    stale.unlink(missing_ok=True)
                (files / name).replace(target)
                target.chmod(0o600)
                placed += 1
        voices = staff_dir(config)
        for voice in sorted((files / "staff-voices").glob("*.json")):
            voices.mkdir(parents=True, exist_ok=True)
            voice.replace(voices / voice.name)
            placed += 1
        if (files / "room-profile.json").is_file():
            (files / "room-profile.json").replace(profile_path(config_path))
            placed += 1
    store = Store(database)  # migrates an older schema
    try:
        cutoff = datetime.now(timezone.utc) - timedelta(days=config.storage.retention_days)
        purged = store.purge(cutoff)
    finally:
        store.close()
    _version, sessions = _schema_and_sessions(database)
    logger.info("restored %s: %d files, %d sessions kept, retention deleted %s", backup, placed, sessions, purged)
    return BackupSummary(backup, placed, sessions, schema, backup.stat().st_size)
