"""How long the review page takes to build a session's page: the demo clip's session (about 14 s) and
a 50-minute one made of its stored rows (2,990 windows, 12 moments: ``tests/long_session.py``), in one
run. "First view" is a cold build (the database read, the report with its figures, the interactive
timeline); "later views" are served from the page cache; the service also builds the newest sessions
ahead at start. The short session is the baseline of the ratios. Target: a 50-minute session opens
in under 2 s on this machine.

Usage: .venv/bin/python benchmarks/review_page.py [--repeats 3]
Writes benchmarks/results/review-page-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from edge.channels.registry import default_registry
    from edge.config import load_config
    from edge.config.models import ModelsConfig
    from edge.inference.pack import trust_pack
    from edge.review.cache import PageCache
    from edge.review.staff import Staff
    from edge.review.web import Review
    from edge.runtime import Appliance
    from tests.conftest import CONSENT, DEFAULT_PACK, DEMO_CLIP, EVERYTHING_KEPT, PACK_KEY, write_config
    from tests.long_session import lengthen

    folder = Path(tempfile.mkdtemp(prefix="review-bench-"))
    try:
        trust_pack(ModelsConfig(pack=DEFAULT_PACK, trusted_keys=[PACK_KEY]))
        path = write_config(
            folder / "room.toml",
            face_model=folder / "unused.onnx",
            state_dir=folder / "state",
            mqtt_port=None,
            pack=DEFAULT_PACK,
            extra=EVERYTHING_KEPT,
        )
        config = load_config(path)
        short = Appliance(config, DEMO_CLIP.as_uri()).run(consent=CONSENT).session_id
        long = lengthen(config.storage.state_dir / config.storage.database, short)
        rows = {"short": short, "long": long}
        results: dict[str, dict[str, float | int]] = {}
        for name, sid in rows.items():
            first, later, size = [], [], 0
            for _ in range(args.repeats):
                review = Review(config, None, None, None, default_registry(), False, PageCache())  # type: ignore[arg-type]
                row = review.rows(Staff("bench", "admin"), sid)[0]
                started = time.perf_counter()
                built = review.built(row)
                first.append(time.perf_counter() - started)
                started = time.perf_counter()
                review.built(row)
                later.append(time.perf_counter() - started)
                size = len(built.report) + len(built.timeline)
            results[name] = {
                "windows": row.windows,
                "moments": row.events,
                "first_view_s": round(statistics.median(first), 3),
                "later_view_ms": round(1000 * statistics.median(later), 3),
                "page_kib": round(size / 1024, 1),
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = results["short"]["first_view_s"]
    lines = [
        "# Review page: building a session's page",
        "",
        f"Median of {args.repeats} runs; first view: a cold build (database read, report with figures, timeline); "
        "later views: from the page cache. The 14-second demo session is the baseline. Target: a 50-minute "
        "session under 2 s.",
        "",
        "| session | windows | moments | first view | x short | later views | page |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {r['windows']} | {r['moments']} | {r['first_view_s']} s | "
            f"{float(r['first_view_s']) / float(base):.1f} | {r['later_view_ms']} ms | {r['page_kib']} KiB |"
            for name, r in results.items()
        ),
    ]
    write_results(
        ROOT / "benchmarks" / "results",
        "review-page",
        {"machine": machine(), "sessions": results},
        "\n".join(lines) + "\n",
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
