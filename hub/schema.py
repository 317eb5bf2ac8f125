"""Creating the hub's database: the tables (:mod:`hub.store`), upgrades from earlier schema versions,
and the dashboard's grants (:mod:`hub.grants`)."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from hub.grants import grant_dashboard
from hub.locks import SCHEMA, one_at_a_time
from hub.periods import month_of
from hub.store import SCHEMA_VERSION, hub_settings, metadata, released_cells, sessions, shown_cells

logger = logging.getLogger(__name__)

_OLD_VIEWS = [f"agg_{level}_{grain}" for level in ("clinic", "site", "room") for grain in ("day", "week", "month")]


def _upgrade_from_1(engine: sa.Engine) -> None:
    """Version 1 kept one row per session, calendar months and live aggregate views: move the rows
    into parts (all open, so the next releases take them) with months of whole weeks."""
    with engine.begin() as conn:
        for view in _OLD_VIEWS:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
        conn.execute(sa.text("ALTER TABLE sessions RENAME TO sessions_v1"))
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER INDEX sessions_pkey RENAME TO sessions_v1_pkey"))
        for index in ("ix_sessions_scope",):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {index}"))
    metadata.create_all(engine)
    with engine.begin() as conn:
        names = [c.name for c in sessions.columns if c.name not in ("part", "sealed_in")]
        listed = ", ".join(names)
        conn.execute(sa.text(f"INSERT INTO sessions ({listed}, part) SELECT {listed}, 0 FROM sessions_v1"))  # noqa: S608
        conn.execute(sa.text("DROP TABLE sessions_v1"))
        for week in conn.execute(sa.select(sessions.c.week).distinct()).scalars().all():
            conn.execute(sessions.update().where(sessions.c.week == week).values(month=month_of(week)))
        if "disabled_at" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}:
            conn.execute(sa.text("ALTER TABLE users ADD COLUMN disabled_at VARCHAR(40)"))
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(schema_version=2))
    logger.info("hub database upgraded to schema version 2 (session parts, months of whole weeks, releases)")


def _upgrade_from_2(engine: sa.Engine) -> None:
    """Version 3 keeps the newest version of every released cell in ``shown_cells``: fill it."""
    with engine.begin() as conn:
        newest: dict[tuple[str, ...], dict[str, object]] = {}
        for row in conn.execute(sa.select(released_cells).order_by(released_cells.c.release_id)).mappings():
            cell = {k: v for k, v in row.items() if k != "id"}
            newest[(row["level"], row["grain"], row["site"], row["room"], row["period"])] = cell
        conn.execute(shown_cells.delete())
        if newest:
            conn.execute(shown_cells.insert(), list(newest.values()))
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(schema_version=3))
    logger.info("hub database upgraded to schema version 3 (the dashboard's rollup of released cells)")


def _upgrade_from_3(engine: sa.Engine) -> None:
    """Version 4 adds the retraction tables (``create_all`` made them): record the version."""
    with engine.begin() as conn:
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(schema_version=4))
    logger.info("hub database upgraded to schema version 4 (retractions)")


def create_schema(engine: sa.Engine, k: int) -> None:
    """Create tables (idempotent), upgrade an older database, set k and grant the dashboard's role.

    k may only grow: lowering it would reveal cells that were hidden before.
    """
    with one_at_a_time(engine, SCHEMA):
        _create_schema(engine, k)


def _create_schema(engine: sa.Engine, k: int) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(hub_settings.c.k, hub_settings.c.schema_version).where(hub_settings.c.id == 1)
        ).first()
    if row is not None and row.schema_version < 2:
        _upgrade_from_1(engine)
    if row is not None and row.schema_version < 3:
        _upgrade_from_2(engine)
    if row is not None and row.schema_version < SCHEMA_VERSION:
        _upgrade_from_3(engine)
    with engine.begin() as conn:
        if row is None:
            conn.execute(hub_settings.insert().values(id=1, k=k, schema_version=SCHEMA_VERSION))
        elif k > row.k:
            conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(k=k))
            logger.info("k raised from %d to %d", row.k, k)
        elif k < row.k:
            logger.warning("configured k=%d is below the database's k=%d; keeping %d (k only grows)", k, row.k, row.k)
    grant_dashboard(engine)
