"""Least privilege for the dashboard: on PostgreSQL it logs in as ``clinic_dashboard``, a role of its
own with its own password (``database.dashboard_password_file``), that may read the releases and the
appliances' health and keep the accounts, and nothing else (not the per-session rows, not the message
ids, not the dead letters). It is not a ``SET ROLE`` on the hub's connection, which ``RESET ROLE``
would undo: the dashboard's connections never hold the hub's rights.

SQLite has no roles: a small clinic's hub on SQLite relies on the dashboard's code reading the
releases only. Use PostgreSQL where that is not enough.
"""

from __future__ import annotations

import sqlalchemy as sa

from clinic_common.errors import ConfigError
from hub.store import auth, devices, hub_settings, released_cells, releases, retractions, shown_cells

DASHBOARD_ROLE = "clinic_dashboard"
READS = (releases, released_cells, shown_cells, devices, hub_settings, retractions)
KEEPS = auth.all()


def grant_dashboard(engine: sa.Engine, password: str | None = None, keeps: tuple[sa.Table, ...] = ()) -> None:
    """Create the dashboard's log-in role (with ``password``; without one it cannot log in) and grant
    it exactly what it needs."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": DASHBOARD_ROLE}).first()
        if exists is None:
            conn.execute(sa.text(f"CREATE ROLE {DASHBOARD_ROLE} NOLOGIN"))
        if password is not None:  # a process without it (an ingest worker) leaves the log-in as it is
            quoted = conn.execute(sa.text("SELECT quote_literal(:p)"), {"p": password}).scalar_one()
            conn.execute(sa.text(f"ALTER ROLE {DASHBOARD_ROLE} LOGIN PASSWORD {quoted}"))
        conn.execute(sa.text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {DASHBOARD_ROLE}"))
        conn.execute(sa.text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {DASHBOARD_ROLE}"))
        for table in READS:
            conn.execute(sa.text(f"GRANT SELECT ON {table.name} TO {DASHBOARD_ROLE}"))
        for table in (*KEEPS, *keeps):
            conn.execute(sa.text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table.name} TO {DASHBOARD_ROLE}"))
            for column in table.columns:
                if column.autoincrement is True and column.primary_key:
                    conn.execute(sa.text(f"GRANT USAGE ON SEQUENCE {table.name}_{column.name}_seq TO {DASHBOARD_ROLE}"))


def as_dashboard(engine: sa.Engine, password: str | None) -> sa.Engine:
    """An engine for the dashboard: on PostgreSQL it logs in as its own role.

    Raises:
        ConfigError: PostgreSQL without the dashboard's password.
    """
    if engine.dialect.name != "postgresql":
        return engine
    if password is None:
        raise ConfigError(
            "the dashboard on PostgreSQL logs in as its own role (clinic_dashboard): set "
            "database.dashboard_password_file in hub.toml to a file holding its password (one line)"
        )
    return sa.create_engine(engine.url.set(username=DASHBOARD_ROLE, password=password), pool_pre_ping=True)
