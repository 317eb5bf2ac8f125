"""Least privilege for the dashboard: on PostgreSQL it connects as ``clinic_dashboard``, a role that
may read the releases and the appliances' health and keep the accounts, and nothing else (not the
per-session rows, not the message ids, not the dead letters).

SQLite has no roles: a small clinic's hub on SQLite relies on the dashboard's code reading the
releases only. Use PostgreSQL where that is not enough.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.store import auth, devices, hub_settings, released_cells, releases, retractions, shown_cells

DASHBOARD_ROLE = "clinic_dashboard"
READS = (releases, released_cells, shown_cells, devices, hub_settings, retractions)
KEEPS = auth.all()


def grant_dashboard(engine: sa.Engine, keeps: tuple[sa.Table, ...] = ()) -> None:
    """Create the dashboard's role (no log-in of its own) and grant it exactly what it needs."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": DASHBOARD_ROLE}).first()
        if exists is None:
            conn.execute(sa.text(f"CREATE ROLE {DASHBOARD_ROLE} NOLOGIN"))
        conn.execute(sa.text(f"GRANT {DASHBOARD_ROLE} TO CURRENT_USER"))
        conn.execute(sa.text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {DASHBOARD_ROLE}"))
        conn.execute(sa.text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {DASHBOARD_ROLE}"))
        for table in READS:
            conn.execute(sa.text(f"GRANT SELECT ON {table.name} TO {DASHBOARD_ROLE}"))
        for table in (*KEEPS, *keeps):
            conn.execute(sa.text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table.name} TO {DASHBOARD_ROLE}"))
            for column in table.columns:
                if column.autoincrement is True and column.primary_key:
                    conn.execute(sa.text(f"GRANT USAGE ON SEQUENCE {table.name}_{column.name}_seq TO {DASHBOARD_ROLE}"))


def as_dashboard(engine: sa.Engine) -> sa.Engine:
    """An engine for the dashboard: on PostgreSQL every connection takes the restricted role."""
    if engine.dialect.name != "postgresql":
        return engine
    restricted = sa.create_engine(engine.url, pool_pre_ping=True)

    @sa.event.listens_for(restricted, "connect")
    def _restrict(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"SET ROLE {DASHBOARD_ROLE}")
        cursor.close()
        dbapi_connection.commit()  # type: ignore[attr-defined]

    return restricted
