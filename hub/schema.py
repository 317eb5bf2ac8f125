"""Creating the hub's database: the tables (:mod:`hub.store`), upgrades from earlier schema versions,
and the dashboard's grants (:mod:`hub.grants`)."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from clinic_common.errors import ConfigError
from hub.grants import grant_dashboard
from hub.locks import SCHEMA, one_at_a_time
from hub.measures import SHARES
from hub.periods import month_of
from hub.store import SCHEMA_VERSION, hub_settings, metadata, released_cells, releases, sessions, shown_cells

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


def _release_settings(engine: sa.Engine) -> None:
    """Version 5: releases record the grain and dominance they were made with, one release per version
    of a period, and the dominance limit is kept beside k. Idempotent; run before ``create_all`` too
    (whose unique index would fail on a database where a period was released twice)."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table("releases"):
            return
        have = {c["name"] for c in sa.inspect(conn).get_columns("releases")}
        for column in ("finest VARCHAR(5)", "dominance FLOAT"):
            if column.split()[0] not in have:
                conn.execute(sa.text(f"ALTER TABLE releases ADD COLUMN {column}"))
        if "dominance" not in {c["name"] for c in sa.inspect(conn).get_columns("hub_settings")}:
            conn.execute(sa.text("ALTER TABLE hub_settings ADD COLUMN dominance FLOAT NOT NULL DEFAULT 0.3"))
        for table, name, columns in (
            ("gaps", "ix_gaps_device_from", "device_id, from_seq"),
            ("gaps", "ix_gaps_noticed_at", "noticed_at"),
            ("dead_letters", "ix_dead_letters_received", "received_at"),
        ):
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})"))
        if "ux_releases_version" in {i["name"] for i in sa.inspect(conn).get_indexes("releases")}:
            return
        twice = conn.execute(
            sa.select(releases.c.grain, releases.c.period, releases.c.version)
            .group_by(releases.c.grain, releases.c.period, releases.c.version)
            .having(sa.func.count() > 1)
        ).all()
        if twice:
            # Made by two release runs that raced (dp mode: the budget was spent twice for these).
            logger.error(
                "periods released twice before this upgrade (kept as they are): %s",
                ", ".join(f"{g} {p} v{v}" for g, p, v in twice),
            )
            conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ux_releases_version ON releases (grain, period, version)"))
        else:
            conn.execute(sa.text("CREATE UNIQUE INDEX ux_releases_version ON releases (grain, period, version)"))


def _upgrade_from_4(engine: sa.Engine) -> None:
    _release_settings(engine)
    with engine.begin() as conn:
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(schema_version=5))
    logger.info("hub database upgraded to schema version 5 (release settings, one release per version)")


def _upgrade_from_5(engine: sa.Engine) -> None:
    """Version 6: a device is known by its room (``<site>/<room>/<id>``, the room being the topic's,
    which the broker's ACL ties to the appliance), and each session records its device."""
    with engine.begin() as conn:
        if "device_id" not in {c["name"] for c in sa.inspect(conn).get_columns("sessions")}:
            conn.execute(sa.text("ALTER TABLE sessions ADD COLUMN device_id VARCHAR(200)"))
        if engine.dialect.name == "postgresql":
            for table in ("devices", "gaps"):
                conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN device_id TYPE VARCHAR(200)"))
        conn.execute(
            sa.text(
                "UPDATE gaps SET device_id = (SELECT d.site || '/' || d.room || '/' || d.device_id FROM devices d "
                "WHERE d.device_id = gaps.device_id) WHERE device_id NOT LIKE '%/%' "
                "AND EXISTS (SELECT 1 FROM devices d WHERE d.device_id = gaps.device_id)"
            )
        )
        conn.execute(
            sa.text(
                "UPDATE devices SET device_id = site || '/' || room || '/' || device_id WHERE device_id NOT LIKE '%/%'"
            )
        )
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(schema_version=6))
    logger.info("hub database upgraded to schema version 6 (devices known by their room)")


def _add_share_columns(engine: sa.Engine) -> None:
    """Columns of shares declared since the database was made (:mod:`hub.measures`): a new share
    starts at zero for what was stored before it existed."""
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        for table in (sessions, released_cells, shown_cells):
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for share in SHARES:
                if share.column not in present:
                    conn.execute(
                        sa.text(f"ALTER TABLE {table.name} ADD COLUMN {share.column} FLOAT NOT NULL DEFAULT 0")
                    )
                    logger.info("hub database: column %s.%s added (a new share)", table.name, share.column)


def create_schema(engine: sa.Engine, k: int, dominance: float = 0.3, dashboard_password: str | None = None) -> None:
    """Create tables (idempotent), upgrade an older database, set k and the dominance limit, and grant
    the dashboard's role.

    k may only grow and the dominance limit only shrink: loosening either would reveal cells that
    were hidden before.
    """
    with one_at_a_time(engine, SCHEMA):
        _create_schema(engine, k, dominance, dashboard_password)


def _refuse_newer(engine: sa.Engine) -> None:
    """A database a newer release wrote (a downgrade too far) is refused before anything changes.

    Raises:
        ConfigError: its schema version is newer than :data:`SCHEMA_VERSION`.
    """
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(hub_settings.name):
            return
        version = conn.execute(sa.select(hub_settings.c.schema_version).where(hub_settings.c.id == 1)).scalar()
    if version is not None and version > SCHEMA_VERSION:
        raise ConfigError(
            f"the hub database is at schema {version}, written by a newer clinic-hub; this release reads up to "
            f"{SCHEMA_VERSION}. Nothing was changed: install that release or newer, or restore a backup taken "
            "before the upgrade onto a fresh database"
        )


def _create_schema(engine: sa.Engine, k: int, dominance: float, dashboard_password: str | None) -> None:
    _refuse_newer(engine)
    _release_settings(engine)  # before create_all, whose unique index fails on a period released twice
    metadata.create_all(engine)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(hub_settings.c.k, hub_settings.c.schema_version).where(hub_settings.c.id == 1)
        ).first()
    if row is not None and row.schema_version < 2:
        _upgrade_from_1(engine)
    if row is not None and row.schema_version < 3:
        _upgrade_from_2(engine)
    if row is not None and row.schema_version < 4:
        _upgrade_from_3(engine)
    if row is not None and row.schema_version < 5:
        _upgrade_from_4(engine)
    if row is not None and row.schema_version < SCHEMA_VERSION:
        _upgrade_from_5(engine)
    _add_share_columns(engine)
    with engine.begin() as conn:
        if row is None:
            conn.execute(hub_settings.insert().values(id=1, k=k, schema_version=SCHEMA_VERSION, dominance=dominance))
        else:
            _pin(conn, k, dominance)
    grant_dashboard(engine, dashboard_password)


def _pin(conn: sa.Connection, k: int, dominance: float) -> None:
    """Keep the strictest k and dominance limit ever configured."""
    row = conn.execute(sa.select(hub_settings.c.k, hub_settings.c.dominance).where(hub_settings.c.id == 1)).one()
    if k > row.k:
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(k=k))
        logger.info("k raised from %d to %d", row.k, k)
    elif k < row.k:
        logger.warning("configured k=%d is below the database's k=%d; keeping %d (k only grows)", k, row.k, row.k)
    if dominance < row.dominance:
        conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(dominance=dominance))
        logger.info("dominance limit lowered from %.2f to %.2f", row.dominance, dominance)
    elif dominance > row.dominance:
        logger.warning(
            "configured dominance=%.2f is above the database's %.2f; keeping %.2f (it only tightens)",
            dominance,
            row.dominance,
            row.dominance,
        )
