"""The aggregate views, the only relations the dashboard reads.

``agg_<level>_<grain>`` for level clinic/site/room and grain day/week/month: per cell, the number
of sessions and the sums over them, for cells with at least k sessions (k from ``hub_settings``,
so the database itself enforces it whatever queries it). Sums rather than ratios, so that the
complementary suppression in :mod:`hub.privacy` can check what differences would reveal.
"""

from __future__ import annotations

import sqlalchemy as sa

from contract.classes import CLASSES
from hub.store import FLAGS

LEVELS: dict[str, tuple[str, ...]] = {"clinic": (), "site": ("site",), "room": ("site", "room")}
GRAINS: tuple[str, ...] = ("day", "week", "month")
SUMS: tuple[str, ...] = (
    "windows",
    "seconds",
    "face_coverage_sum",
    "voiced_sum",
    "prob_windows",
    *(f"p_{c}" for c in CLASSES),
    *(f"flag_{f}" for f in FLAGS),
)
DASHBOARD_ROLE = "clinic_dashboard"


def view_name(level: str, grain: str) -> str:
    if level not in LEVELS or grain not in GRAINS:
        raise ValueError(f"no aggregate view for level {level!r}, grain {grain!r}")
    return f"agg_{level}_{grain}"


def view_sql(level: str, grain: str) -> str:
    dims = LEVELS[level]
    columns = [*dims, f"{grain} AS period", "COUNT(*) AS sessions", *(f"SUM({s}) AS {s}" for s in SUMS)]
    group = ", ".join([*dims, grain])
    # Identifiers come from the fixed tables above; no input reaches this text.
    select = f"SELECT {', '.join(columns)} FROM sessions GROUP BY {group}"  # noqa: S608
    having = "HAVING COUNT(*) >= (SELECT k FROM hub_settings WHERE id = 1)"
    return f"CREATE VIEW {view_name(level, grain)} AS {select} {having}"


def create_views(engine: sa.Engine) -> None:
    """(Re)create every aggregate view; on PostgreSQL grant the dashboard role the views only."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        for level in LEVELS:
            for grain in GRAINS:
                conn.execute(sa.text(f"DROP VIEW IF EXISTS {view_name(level, grain)}"))
                conn.execute(sa.text(view_sql(level, grain)))
        if postgres:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": DASHBOARD_ROLE}).first()
            if exists is None:
                conn.execute(sa.text(f"CREATE ROLE {DASHBOARD_ROLE} NOLOGIN"))
            conn.execute(sa.text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {DASHBOARD_ROLE}"))
            for level in LEVELS:
                for grain in GRAINS:
                    conn.execute(sa.text(f"GRANT SELECT ON {view_name(level, grain)} TO {DASHBOARD_ROLE}"))
