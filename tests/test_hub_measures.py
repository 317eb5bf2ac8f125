"""A share of windows the hub shows is declared once (hub.measures.SHARES): its columns, what a
summary adds, the dashboard's and the CSV's columns all follow the declaration, and a database made
before a share existed gets its columns at the next start."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.bulk import sums
from hub.dashboard import CSV_HEADER
from hub.measures import SHARES
from hub.schema import create_schema
from hub.store import SUMS, released_cells, sessions, shown_cells
from tests.hub_helpers import summary


@pytest.mark.unit
def test_every_share_has_its_columns_its_sum_and_its_csv_column() -> None:
    s = summary("north", "r1", "dev-1", 1, "00000000-0000-4000-8000-000000000001", "2026-10-05", windows=4)
    added = sums(s)
    for share in SHARES:
        assert share.column in SUMS
        for table in (sessions, released_cells, shown_cells):
            assert share.column in table.c
        assert added[share.column] == pytest.approx(4 * (share.of(s) or 0.0))
        assert share.csv in CSV_HEADER
    assert added["face_coverage_sum"] == pytest.approx(3.2) and added["voiced_sum"] == pytest.approx(2.0)


def test_a_database_made_before_a_share_gets_its_columns(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    create_schema(engine, k=3)
    newest = SHARES[-1].column
    with engine.begin() as conn:
        for table in ("sessions", "released_cells", "shown_cells"):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {newest}"))
    create_schema(engine, k=3)
    inspector = sa.inspect(engine)
    for table in ("sessions", "released_cells", "shown_cells"):
        assert newest in {c["name"] for c in inspector.get_columns(table)}
    engine.dispose()
