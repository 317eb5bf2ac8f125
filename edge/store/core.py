"""The database connection every part of :class:`edge.store.db.Store` shares: one writer per
connection, each write one ``BEGIN IMMEDIATE`` transaction, WAL checkpoints."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.channels.registry import ChannelRegistry
from edge.errors import StoreError

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
JOURNAL_LIMIT_BYTES = 4 * 1024 * 1024
CHECKPOINT_TRIES = 5


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StoreCore:
    """An open database (:class:`edge.store.db.Store` opens it)."""

    path: Path
    db: sqlite_utils.Database
    registry: ChannelRegistry

    def close(self) -> None:
        self.db.conn.close()

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        # Plain SQL: sqlite-utils' insert helpers commit on their own, which would split the
        # window and its outbox row into two transactions.
        columns = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        self.db.conn.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(row.values()))  # noqa: S608

    def _write(self, what: str, body: Callable[[], Any]) -> Any:
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = body()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot store {what} in {self.path}: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to nothing; True when it went through
        (a reader in the middle of a read can hold it back: tried a few times)."""
        for _ in range(CHECKPOINT_TRIES):
            try:
                busy, _, _ = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                logger.warning("WAL checkpoint failed: %s", exc)
                return False
            if not busy:
                return True
        logger.warning("WAL checkpoint held back by a reader; deleted pages stay in the WAL until the next one")
        return False
