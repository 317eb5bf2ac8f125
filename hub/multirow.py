"""Multi-row statements in chunks, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

logger = logging.getLogger(__name__)

CHUNK = 400  # rows per multi-row statement (well inside SQLite's and PostgreSQL's parameter limits)
T = TypeVar("T")


def chunks(rows: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def rows_in(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], tail: str) -> Any:
    """``INSERT INTO table ... <tail>`` for many rows in one short statement: on PostgreSQL one array
    per column (``unnest``: the statement's text stays the same, whatever the number of rows); on
    SQLite one execution per row."""
    columns = list(rows[0])
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=conn.dialect)}[])" for c in columns)
        statement = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) {tail}"  # noqa: S608
        return conn.execute(sa.text(statement), {c: [r[c] for r in rows] for c in columns})
    values = ", ".join(f":{c}" for c in columns)
    statement = f"INSERT INTO {table.name} ({names}) VALUES ({values}) {tail}"  # noqa: S608
    if "RETURNING" not in tail:
        return conn.execute(sa.text(statement), rows)
    returned = [conn.execute(sa.text(statement), row).all() for row in rows]
    return Rows([r for rows_ in returned for r in rows_])


def among(conn: sa.Connection, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``: on PostgreSQL ``= ANY(array)``, one parameter whatever the count."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


def update_rows(conn: sa.Connection, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    """``UPDATE table SET ... WHERE key = ...`` for many rows: one statement on PostgreSQL."""
    columns = [c for c in rows[0] if c != key]
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=conn.dialect)}[])" for c in [key, *columns])
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        statement = (
            f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS u({key}, {', '.join(columns)}) "  # noqa: S608
            f"WHERE {table.name}.{key} = u.{key}"
        )
        conn.execute(sa.text(statement), {c: [r[c] for r in rows] for c in [key, *columns]})
        return
    update = (
        table.update()
        .where(table.c[key] == sa.bindparam(f"b_{key}"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )
    conn.execute(update, [{f"b_{k}": v for k, v in row.items()} for row in rows])


class Rows:
    """Rows returned by several SQLite statements, read like one result."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def all(self) -> list[Any]:
        return self.rows

    def scalars(self) -> list[Any]:
        return [r[0] for r in self.rows]
