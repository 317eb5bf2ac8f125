"""Creating the hub's database: the tables (:mod:`hub.store`), then the views over them (:mod:`hub.views`)."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from hub.store import SCHEMA_VERSION, hub_settings, metadata
from hub.views import create_views

logger = logging.getLogger(__name__)


def create_schema(engine: sa.Engine, k: int) -> None:
    """Create tables and views (idempotent) and set the k the views enforce.

    k may only grow: lowering it would reveal cells that were hidden before.
    """
    metadata.create_all(engine)
    with engine.begin() as conn:
        row = conn.execute(sa.select(hub_settings.c.k).where(hub_settings.c.id == 1)).first()
        if row is None:
            conn.execute(hub_settings.insert().values(id=1, k=k, schema_version=SCHEMA_VERSION))
        elif k > row.k:
            conn.execute(hub_settings.update().where(hub_settings.c.id == 1).values(k=k))
            logger.info("k raised from %d to %d", row.k, k)
        elif k < row.k:
            logger.warning("configured k=%d is below the database's k=%d; keeping %d (k only grows)", k, row.k, row.k)
    create_views(engine)
