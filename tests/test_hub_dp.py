"""Differentially private releases (privacy.mode = "dp"): OpenDP's accounting of what a release
spends, the noise it adds, and a dp release through the hub's own ingest, release and pages."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hub_helpers import hub_config, summary

from contract.classes import CLASSES
from hub.dashboard import Filters, published, select
from hub.dp import LEVELS, Noise, Totals, measure, spent
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.release import configured_policy, release_due
from hub.service import open_database
from hub.store import devices, released_cells, releases


@pytest.mark.unit
@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0, 2.0, 10.0])
def test_a_release_spends_exactly_its_epsilon_by_opendp_s_own_accounting(epsilon: float) -> None:
    noise = Noise(epsilon)
    assert spent(noise) == pytest.approx(epsilon, rel=1e-9)
    assert noise.scale == pytest.approx(2 * LEVELS / epsilon)


def test_the_noise_has_the_scale_the_page_states() -> None:
    noise = Noise(1.0)
    n = 20000
    out = measure([Totals(0, [0.0] * len(CLASSES)) for _ in range(n)], noise)
    count_noise = [o.sessions for o in out]  # clamped at 0: half the draws are 0
    t = math.exp(-1 / noise.scale)
    positive_mean = sum(count_noise) / n  # E[max(X, 0)] of a discrete Laplace = t / (1 - t^2)
    assert positive_mean == pytest.approx(t / (1 - t * t), rel=0.08)
    within = sum(1 for c in count_noise if c <= noise.count_error()) / n
    assert within >= 0.95 - 0.02  # the stated 95 % interval holds (one side of it, here)
    share_noise = [v for o in out for v in o.shares]  # clamped: positive half, mean = scale / 2
    assert sum(share_noise) / len(share_noise) == pytest.approx(noise.scale / 2, rel=0.05)


def test_a_dp_release_through_the_hub(tmp_path: Path) -> None:
    config = hub_config(tmp_path, 1883, mode="dp", epsilon=1.0)
    engine = open_database(config)
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    seqs = {"r0": 0, "r1": 0}
    for i in range(600):
        room = f"r{i % 2}"
        seqs[room] += 1
        seq = seqs[room]
        label = "happy" if i % 4 else "sad"  # 75 % happy-leaning sessions
        body = summary("north", room, f"dev-{room}", seq, str(uuid.uuid4()), "2026-10-06", label=label, windows=2)
        assert ingest.handle(f"clinic/v1/north/{room}/summary", body.model_dump_json().encode()).result == "stored"
    with engine.begin() as conn:  # a known room without sessions this week is a cell all the same
        conn.execute(devices.insert().values(device_id="dev-r9", site="north", room="r9"))
    done = release_due(engine, configured_policy(engine, config.privacy), dt.date(2026, 11, 5))
    assert [(r.grain, r.period) for r in done] == [("week", "2026-10-05"), ("month", "2026-10")]
    assert all(r.shown + r.hidden == 5 for r in done)  # clinic, north, r0, r1, r9: the cells do not depend on data
    with engine.begin() as conn:
        modes = conn.execute(sa.select(releases.c.mode, releases.c.epsilon).distinct()).all()
        stored = conn.execute(sa.select(released_cells.c.sessions).where(released_cells.c.level == "clinic")).all()
    assert [tuple(m) for m in modes] == [("dp", 1.0)]
    assert len(stored) == 2  # week and month: each its own noise
    with engine.connect() as conn:
        shown = published(conn, ("week", "month"))
    clinic = select(shown, Filters("clinic", "week", None, None, None, None))
    assert len(clinic) == 1
    row = clinic[0]
    # Noise of scale 6: 600 +- 60 fails with probability ~1e-4; the happy share, 600 sessions, +- 0.1 far less.
    assert abs(row.sessions - 600) < 60
    happy = 0.75 * (1 - 0.04 * 7) + 0.25 * 0.04
    assert row.emotions["happy"] is not None and abs(row.emotions["happy"] - happy) < 0.1
    assert row.hours is None
    assert all(v is None for v in row.shares.values()) and all(v is None for v in row.flags.values())
    # No revision in dp mode: late data after the month's release is not released again.
    body = summary("north", "r0", "dev-r0", seqs["r0"] + 1, str(uuid.uuid4()), "2026-10-07", windows=2)
    assert ingest.handle("clinic/v1/north/r0/summary", body.model_dump_json().encode()).result == "stored"
    assert release_due(engine, configured_policy(engine, config.privacy), dt.date(2026, 11, 6)) == []
