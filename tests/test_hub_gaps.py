"""Sequence gaps at scale: a late summary finds its gap through the index whatever the number of
gaps, gaps and dead letters are pruned, and what they missed stays counted. Real SQLite and
PostgreSQL through the hub's own ingest."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hub_helpers import hub_config, postgres, summary

from hub.ingest import GAPS_PER_DEVICE, Ingest
from hub.metrics import HubMetrics
from hub.service import open_database
from hub.store import dead_letters, devices, gaps

NOW = dt.datetime.now(dt.timezone.utc)
TODAY = NOW.date().isoformat()
GAPS = 20_000


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        e = open_database(hub_config(tmp_path, 1883))
        yield e
        e.dispose()
        return
    with postgres(tmp_path) as pg:
        e = open_database(hub_config(tmp_path, 1883, url=pg.url))
        yield e
        e.dispose()


def _with_gaps(engine: sa.Engine, noticed: str) -> None:
    """Device d1 of north/r1 at seq 2*GAPS+1 with every even seq missing (GAPS gaps of one)."""
    with engine.begin() as conn:
        conn.execute(
            devices.insert().values(
                device_id="north/r1/d1",
                site="north",
                room="r1",
                last_seq=2 * GAPS + 1,
                summaries=GAPS + 1,
                missing=GAPS,
            )
        )
        conn.execute(
            gaps.insert(),
            [
                {"device_id": "north/r1/d1", "from_seq": 2 * i, "to_seq": 2 * i, "noticed_at": noticed}
                for i in range(1, GAPS + 1)
            ],
        )


def _send(ingest: Ingest, seq: int) -> str:
    body = summary("north", "r1", "d1", seq, str(uuid.uuid4()), TODAY).model_dump_json().encode()
    return ingest.handle("clinic/v1/north/r1/summary", body).result


def _device(engine: sa.Engine) -> tuple[int, int]:
    with engine.begin() as conn:
        missing = conn.execute(sa.select(devices.c.missing).where(devices.c.device_id == "north/r1/d1")).scalar_one()
        left = conn.execute(sa.select(sa.func.count()).select_from(gaps)).scalar_one()
    return int(missing), int(left)


def test_late_summaries_fill_their_own_gap_among_twenty_thousand(engine: sa.Engine) -> None:
    _with_gaps(engine, NOW.isoformat(timespec="seconds"))
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    for seq in (2, 2 * GAPS // 2, 2 * GAPS):  # the first, one in the middle, the last
        assert _send(ingest, seq) == "stored"
    assert _send(ingest, 2 * GAPS + 5) == "stored"  # a new gap: 2*GAPS+2 .. 2*GAPS+4
    assert _send(ingest, 3) == "stored"  # late, but no gap holds it (it arrived before): nothing filled
    missing, left = _device(engine)
    assert (missing, left) == (GAPS - 3 + 3, GAPS - 3 + 1)
    with engine.begin() as conn:
        held = set(conn.execute(sa.select(gaps.c.from_seq, gaps.c.to_seq)).all())
    assert (2, 2) not in held and (GAPS, GAPS) not in held and (2 * GAPS + 2, 2 * GAPS + 4) in held


def test_gaps_and_dead_letters_are_pruned_and_what_they_missed_stays_counted(engine: sa.Engine) -> None:
    old = (NOW - dt.timedelta(days=45)).isoformat(timespec="seconds")
    _with_gaps(engine, old)
    ingest = Ingest(engine, HubMetrics(), dedup_days=30, max_age_days=3650, dead_letter_days=90)
    with engine.begin() as conn:  # one fresh gap beyond the old ones; dead letters of 100 and 10 days ago
        conn.execute(
            gaps.insert().values(
                device_id="north/r1/d1", from_seq=2 * GAPS + 2, to_seq=2 * GAPS + 2, noticed_at=NOW.isoformat()
            )
        )
        for days in (100, 10):
            conn.execute(
                dead_letters.insert().values(
                    received_at=(NOW - dt.timedelta(days=days)).isoformat(timespec="seconds"),
                    topic="clinic/v1/north/r1/summary",
                    reason="malformed",
                    bytes=10,
                    sha256="0" * 64,
                )
            )
    ingest.prune(NOW)
    missing, left = _device(engine)
    assert (missing, left) == (GAPS, 1)  # the old gaps are forgotten, their summaries still counted missing
    assert _send(ingest, 4) == "stored"  # it arrives after all: stored as late, nothing to fill
    assert _device(engine) == (GAPS, 1)
    with engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dead_letters)).scalar_one() == 1


def test_a_device_keeps_at_most_its_newest_gaps(engine: sa.Engine) -> None:
    _with_gaps(engine, NOW.isoformat(timespec="seconds"))
    Ingest(engine, HubMetrics(), max_age_days=3650).prune(NOW)
    with engine.begin() as conn:
        kept = conn.execute(sa.select(sa.func.min(gaps.c.from_seq), sa.func.count()).select_from(gaps)).one()
    assert tuple(kept) == (2 * (GAPS - GAPS_PER_DEVICE + 1), GAPS_PER_DEVICE)
    assert _device(engine)[0] == GAPS
