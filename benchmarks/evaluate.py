"""How fast ``clinic-edge evaluate`` goes through a corpus at the room's defaults, and what RAVDESS's
1,440 audio-visual speech clips would take on this machine.

A generated corpus in RAVDESS's layout (``Actor_NN/01-01-EE-...mp4``, 3.6 s like RAVDESS's speech
clips: a package photograph with espeak-ng saying one of the two statements) runs through the real
command twice in one sitting: with one worker process (the baseline) and with ``--workers`` (the
default: the CPU count, at most 4). Each run starts from an empty results folder.

Usage: .venv/bin/python benchmarks/evaluate.py [--actors 4] [--workers 2]
Writes benchmarks/results/evaluate-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "build" / "models" / "pack"
PACK_KEY = ROOT / "build" / "keys" / "pack-signing.key.pub"
RAVDESS_CLIPS = 1440  # audio-visual speech clips: 24 actors x 60
SECONDS = 3.6


def _scene() -> Any:
    spec = importlib.util.spec_from_file_location("make_scene", ROOT / "scripts" / "make_scene.py")
    if spec is None or spec.loader is None:
        raise SystemExit("scripts/make_scene.py is missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def corpus(root: Path, actors: int) -> int:
    scene = _scene()
    n = 0
    for actor in range(1, actors + 1):
        for code, photo in (("01", "hopper"), ("03", "astronaut"), ("04", "hopper"), ("05", "astronaut")):
            for statement, text in (("01", "Kids are talking by the door."), ("02", "Dogs are sitting by the door.")):
                name = f"01-01-{code}-01-{statement}-01-{actor:02d}.mp4"
                shots = [scene.Shot(0.0, photo)]
                scene.compose(root / f"Actor_{actor:02d}" / name, shots, [(0.4, text)], SECONDS, container="mp4")
                n += 1
    return n


def room(folder: Path) -> Path:
    path = folder / "room.toml"
    path.write_text(
        f'[room]\nsite = "bench"\nroom = "r1"\ndevice_id = "bench"\n[models]\npack = "{PACK}"\n'
        f'trusted_keys = ["{PACK_KEY}"]\n[storage]\nstate_dir = "{folder / "state"}"\n[mqtt]\nenabled = false\n'
        "[metrics]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def run(config: Path, data: Path, out: Path, workers: int) -> tuple[float, float, float]:
    """The whole run's seconds, the start-up's (until the first clip's record is written) and the
    steady rate in clips per minute (from the first record to the last)."""
    started_wall, started = time.time(), time.perf_counter()
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "clinic-edge"),
            "evaluate",
            "--config",
            str(config),
            "--corpus",
            f"ravdess={data}",
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    total = time.perf_counter() - started
    finished = sorted(p.stat().st_mtime for p in (out / "clips").glob("*.json"))
    startup = finished[0] - started_wall
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) * 60
    return total, startup, steady


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 2)))
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    try:
        clips = corpus(folder / "RAVDESS", args.actors)
        config = room(folder)
        rows = {}
        for workers in sorted({1, args.workers}):
            seconds, startup, steady = run(config, folder / "RAVDESS", folder / f"out-{workers}", workers)
            rows[workers] = {
                "seconds": round(seconds, 1),
                "clips_per_minute": round(clips / seconds * 60, 1),
                "startup_seconds": round(startup, 1),
                "steady_clips_per_minute": round(steady, 1),
                # Start-up once, then the steady rate: a long corpus amortises the models' loading.
                "ravdess_minutes": round(startup / 60 + RAVDESS_CLIPS / steady, 1),
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = rows[1]["steady_clips_per_minute"]
    results = {"machine": machine(), "clips": clips, "clip_seconds": SECONDS, "runs": rows}
    lines = [
        "# clinic-edge evaluate: clips per minute at the room's defaults",
        "",
        f"{clips} generated clips in RAVDESS's layout ({SECONDS} s each, audio-visual), the default pack, every "
        "default channel; each run from an empty results folder. Start-up: until the first clip's record "
        "(the workers' model loading and first clip); steady: clips per minute from the first record to the last. "
        "The projection for RAVDESS is start-up plus 1,440 clips at the steady rate.",
        "",
        "| workers | seconds | clips / minute (whole run) | start-up s | steady clips / minute | x one worker "
        "| RAVDESS's 1,440 AV speech clips |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {w} | {r['seconds']} | {r['clips_per_minute']} | {r['startup_seconds']} | "
            f"{r['steady_clips_per_minute']} | {r['steady_clips_per_minute'] / base:.2f} | "
            f"{r['ravdess_minutes']} min |"
            for w, r in rows.items()
        ),
    ]
    write_results(ROOT / "benchmarks" / "results", "evaluate", results, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
