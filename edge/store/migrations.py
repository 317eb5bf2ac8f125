"""Schema migrations. Each runs once, in its own transaction, and is recorded with its version."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import sqlite_utils

from edge.errors import StoreError

logger = logging.getLogger(__name__)


def _v1(db: sqlite_utils.Database) -> None:
    db.table("sessions").create(
        {
            "id": str,
            "site": str,
            "room": str,
            "device_id": str,
            "source_kind": str,
            "backend": str,
            "face_model_sha256": str,
            "started_at": str,
            "ended_at": str,
            "windows": int,
            "frames": int,
            "frames_dropped": int,
        },
        pk="id",
        not_null={"site", "room", "device_id", "started_at"},
        defaults={"windows": 0, "frames": 0, "frames_dropped": 0},
    )
    db.table("windows").create(
        {
            "id": int,
            "session_id": str,
            "idx": int,
            "start_s": float,
            "end_s": float,
            "started_at": str,
            "label": str,
            "confidence": float,
            "probs": str,  # JSON: {class: probability}
            "face": str,  # JSON channel summary
            "voice": str,
            "flags": str,  # JSON list
            "timing": str,  # JSON {stage: ms}
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
        not_null={"session_id", "idx", "start_s", "end_s", "started_at", "flags", "created_at"},
    )
    db.table("windows").create_index(["session_id", "idx"], unique=True)
    db.table("outbox").create(
        {
            "seq": int,  # per-device increasing sequence number, also in the payload
            "message_id": str,
            "topic": str,
            "payload": str,
            "created_at": str,
            "sent_at": str,
            "attempts": int,
        },
        pk="seq",
        not_null={"message_id", "topic", "payload", "created_at"},
        defaults={"attempts": 0},
    )
    db.table("outbox").create_index(["message_id"], unique=True)
    db.execute("CREATE INDEX idx_outbox_pending ON outbox(seq) WHERE sent_at IS NULL")


def _v2(db: sqlite_utils.Database) -> None:
    """Consent and pauses per session."""
    sessions = db.table("sessions")
    for column, kind in (
        ("consent_method", str),
        ("consent_recorded_by", str),
        ("consent_reference", str),
        ("consent_recorded_at", str),
        ("pauses", int),
        ("paused_s", float),
    ):
        sessions.add_column(column, kind)


def _v3(db: sqlite_utils.Database) -> None:
    """Words and pulse channels per window, and transcripts (kept only when the room's config says so)."""
    windows = db.table("windows")
    for column in ("words", "pulse", "fused"):
        windows.add_column(column, str)  # JSON
    db.table("transcripts").create(
        {
            "id": int,
            "session_id": str,
            "start_s": float,
            "end_s": float,
            "text": str,
            "label": str,
            "confidence": float,
            "probs": str,  # JSON: {class: probability}
            "importance": str,  # JSON: [[word, importance], ...]
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
        not_null={"session_id", "start_s", "end_s", "text", "created_at"},
    )
    db.table("transcripts").create_index(["session_id", "start_s"])


def _v4(db: sqlite_utils.Database) -> None:
    """Fusion decision, channel contributions, disparity and explanations per window; disparity events."""
    windows = db.table("windows")
    for column in ("state", "second", "fusion_method", "contributions", "disparity", "explanation"):
        windows.add_column(column, str)  # text or JSON
    db.table("events").create(
        {
            "id": int,
            "session_id": str,
            "kind": str,
            "start_s": float,
            "end_s": float,
            "peak": float,
            "mean": float,
            "windows": int,
            "channels": str,  # JSON: the two channels that disagreed most
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
        not_null={"session_id", "kind", "start_s", "end_s", "created_at"},
    )
    db.table("events").create_index(["session_id", "start_s"])


def _v5(db: sqlite_utils.Database) -> None:
    """The fused place in the affect space per window."""
    windows = db.table("windows")
    for column in ("valence", "arousal"):
        windows.add_column(column, float)


def _v6(db: sqlite_utils.Database) -> None:
    """How each session ended (``stop`` or ``crash``), and the device's summary sequence kept apart
    from the outbox rows, so that purging sent rows never lets it go back."""
    db.table("sessions").add_column("ended_by", str)
    db.execute("UPDATE sessions SET ended_by = 'stop' WHERE ended_at IS NOT NULL")
    db.execute("CREATE TABLE device_seq (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL)")
    db.execute("INSERT INTO device_seq (id, last_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM outbox")


def _v7(db: sqlite_utils.Database) -> None:
    """The report files written for each session, so that they are listed and purged with it."""
    db.table("reports").create(
        {"id": int, "session_id": str, "path": str, "created_at": str},
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
        not_null={"session_id", "path", "created_at"},
    )
    db.table("reports").create_index(["path"], unique=True)


def _v8(db: sqlite_utils.Database) -> None:
    """Report files whose session was erased or purged, until they are deleted: a process that dies
    between the erasure's commit and the deletion leaves them on record, and the next start deletes them."""
    db.table("removals").create({"path": str, "since": str}, pk="path", not_null={"since"})


def _v9(db: sqlite_utils.Database) -> None:
    """Clinicians' judgements of the room's results (the review page): a window or a disparity moment
    marked right or as another class, and the session rated. No media and no words: erased with it."""
    db.table("judgements").create(
        {
            "id": int,
            "session_id": str,
            "kind": str,  # window | moment | session
            "window_index": int,
            "start_s": float,
            "end_s": float,
            "verdict": str,  # agree | other (then label) | rating | disagree (a moment that was none)
            "label": str,
            "rating": int,
            "judged_by": str,
            "judged_at": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
        not_null={"session_id", "kind", "verdict", "judged_by", "judged_at"},
    )
    db.table("judgements").create_index(["session_id"])


MIGRATIONS: tuple[tuple[int, Callable[[sqlite_utils.Database], None]], ...] = (
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
    (5, _v5),
    (6, _v6),
    (7, _v7),
    (8, _v8),
    (9, _v9),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(db: sqlite_utils.Database) -> int:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; return the version it had before.

    Raises:
        StoreError: a migration failed (it is rolled back) or the database is newer than this code.
    """
    conn = db.conn
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"database schema version {current} is newer than this software's {SCHEMA_VERSION}; upgrade clinic-edge"
        )
    for version, step in MIGRATIONS:
        if version <= current:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            done = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            if int(done) >= version:
                conn.execute("COMMIT")  # another process (the room, the review page) applied it meanwhile
                continue
            step(db)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except (sqlite3.Error, ValueError) as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"database migration to version {version} failed and was rolled back: {exc}") from exc
        logger.info("database migrated to schema version %d", version)
    return int(current)


def add_channel_columns(db: sqlite_utils.Database, names: Sequence[str]) -> list[str]:
    """A JSON column in ``windows`` for every registered channel that has none yet (a channel added
    to the registry after the database was made); returns the columns added."""
    windows = db.table("windows")
    missing = [name for name in names if name not in windows.columns_dict]
    for name in missing:
        windows.add_column(name, str)  # JSON: the channel's per-window result
        logger.info("database: column windows.%s added for the %s channel", name, name)
    return missing
