"""Work that one hub process at a time may do (PostgreSQL advisory locks; SQLite serialises writers
itself): creating or upgrading the schema, releasing periods."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

SCHEMA = 0x636C696E6963  # creating or upgrading the schema
RELEASES = 0x636C696E6964  # releasing periods


@contextmanager
def one_at_a_time(engine: sa.Engine, key: int) -> Iterator[None]:
    """Hold ``key`` for the block: other hub processes (ingest workers, dashboards started together)
    wait their turn instead of colliding."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
