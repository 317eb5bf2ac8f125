"""Local SQLite storage: sessions, windows and the outbox of summaries to publish."""

from edge.store.db import Erased, OutboxRow, SessionRow, SessionRunningError, Store
from edge.store.migrations import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Erased", "OutboxRow", "SessionRow", "SessionRunningError", "Store"]
