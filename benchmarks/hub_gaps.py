"""A shared ingest batch beside one room with 20,000 open sequence gaps: the batch's time against the
same batch with no gaps anywhere (the baseline, in the same run). Each batch holds in-order
summaries of 50 rooms and a few late ones of the gappy room, as a worker's shared batch would.

Usage: .venv/bin/python benchmarks/hub_gaps.py [--gaps 20000] [--repeats 5]
Writes benchmarks/results/hub-gaps-<machine>.json and .md (SQLite here; PostgreSQL with --postgresql).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()
ROOMS = 50


def _batch(round_: int, late: list[int]) -> list[tuple[str, bytes]]:
    from hub_helpers import summary

    out = []
    for r in range(1, ROOMS + 1):
        s = summary("bench", f"r{r}", f"d{r}", 10 * round_ + 1, str(uuid.uuid4()), TODAY)
        out.append((f"clinic/v1/bench/r{r}/summary", s.model_dump_json().encode()))
    for seq in late:
        s = summary("bench", "r0", "d0", seq, str(uuid.uuid4()), TODAY)
        out.append(("clinic/v1/bench/r0/summary", s.model_dump_json().encode()))
    return out


def run(url: str, gaps_n: int, repeats: int) -> list[float]:
    """Seconds per shared batch, ``repeats`` batches after one warm-up."""
    from hub_helpers import hub_config

    from hub.ingest import Ingest
    from hub.metrics import HubMetrics
    from hub.service import open_database
    from hub.store import devices, gaps

    tmp = Path(tempfile.mkdtemp(prefix="hub-gaps-"))
    engine = open_database(hub_config(tmp, 1883, url=url.replace("{tmp}", str(tmp))))
    top = 2 * gaps_n + 1
    with engine.begin() as conn:
        conn.execute(gaps.delete())  # a PostgreSQL database is shared by both runs
        conn.execute(devices.delete())
        conn.execute(devices.insert().values(device_id="bench/r0/d0", site="bench", room="r0", last_seq=top))
        if gaps_n:
            rows = [
                {"device_id": "bench/r0/d0", "from_seq": 2 * i, "to_seq": 2 * i, "noticed_at": TODAY}
                for i in range(1, gaps_n + 1)
            ]
            conn.execute(gaps.insert(), rows)
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    times = []
    for round_ in range(repeats + 1):
        late = [2 * (1 + (round_ * 7 + k * 997) % max(gaps_n, 1)) for k in range(5)] if gaps_n else []
        batch = _batch(round_, late)
        started = time.perf_counter()
        ingest.store_batch(batch)
        if round_:
            times.append(time.perf_counter() - started)
    engine.dispose()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgresql", action="store_true", help="also on a PostgreSQL server started here")
    args = parser.parse_args(argv)
    urls = {"sqlite": "sqlite:///{tmp}/hub.db"}
    stack: Any = None
    if args.postgresql:
        from contextlib import ExitStack

        from hub_helpers import postgres

        stack = ExitStack()
        urls["postgresql"] = stack.enter_context(postgres(Path(tempfile.mkdtemp(prefix="hub-gaps-pg-")))).url
    results: dict[str, Any] = {"machine": machine(), "gaps": args.gaps, "rooms": ROOMS, "repeats": args.repeats}
    lines = [
        "# A shared ingest batch beside a room with many open gaps",
        "",
        f"{ROOMS} rooms' in-order summaries plus 5 late ones of a room with {args.gaps} open gaps, per batch; "
        "baseline: the same batch with no gaps (same run).",
        "",
        "| database | no gaps: median ms | with gaps: median ms | ratio |",
        "| --- | --- | --- | --- |",
    ]
    try:
        for name, url in urls.items():
            base = statistics.median(run(url, 0, args.repeats))
            gappy = statistics.median(run(url, args.gaps, args.repeats))
            results[name] = {"baseline_s": base, "gaps_s": gappy, "ratio": gappy / base}
            lines.append(f"| {name} | {base * 1e3:.1f} | {gappy * 1e3:.1f} | {gappy / base:.2f} |")
    finally:
        if stack is not None:
            stack.close()
    write_results(ROOT / "benchmarks" / "results", "hub-gaps", results, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
