"""Cost of the channels and of explanations per window, on the demo clip, against a face-only room
in the same run.

Five room set-ups, each run ``--repeats`` times after one warm-up run (files are analysed as fast
as possible, so frames per second is throughput):
  face only   channels voice, words and pulse off, no explanations (the baseline);
  default     the room's defaults: face, voice, words (streaming faster-whisper) and pulse on,
              explanations on disagreement;
  default, detection every 3rd frame   the same, reusing face detections across frames
              (vision.detect_every = 3): the before/after of that optimisation;
  default, detection and face mesh every 3rd frame   also reading the pulse's skin regions from
              the last face mesh on two frames of three (channels.pulse.mesh_every = 3);
  everything  every channel, words by whisper.cpp, and every window explained.
For each: frames/s (and its ratio to the baseline), window complete -> stored p50/p95, and the median
per-window cost of each stage from the windows' stored timings.

Usage: .venv/bin/python benchmarks/channels.py [--repeats 2] [--engine-dir ENGINES]
Writes benchmarks/results/channels-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from results_io import machine, write_results

if TYPE_CHECKING:
    from edge.config.models import AppConfig

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "build" / "demo" / "demo.mkv"
PACK = ROOT / "build" / "models" / "pack"
PACK_KEY = ROOT / "build" / "keys" / "pack-signing.key.pub"
GGML = ROOT / "build" / "models" / "whisper-tiny.en.ggml.bin"
STAGES = (
    "face_detect_ms",
    "face_classify_ms",
    "skin_ms",
    "audio_ms",
    "voice_cues_ms",
    "pulse_ms",
    "words_ms",
    "transcribe_ms",
    "text_ms",
    "fusion_ms",
    "explain_face_ms",
    "explain_voice_ms",
)
SETUPS: dict[str, dict[str, Any]] = {
    "face only": {
        "channels": {"voice": {"enabled": False}, "words": {"enabled": False}, "pulse": {"enabled": False}},
        "explain": {"when": "off"},
        "disparity": {"enabled": False},
    },
    "default": {},
    "default, detection every 3rd frame": {"vision": {"detect_every": 3}},
    "default, detection and face mesh every 3rd frame": {
        "vision": {"detect_every": 3},
        "channels": {"pulse": {"mesh_every": 3}},
    },
    "everything": {
        "channels": {"words": {"enabled": True, "model": str(GGML)}},
        "explain": {"when": "every"},
    },
}


def _backends(engine_dir: Path) -> list[dict[str, Any]]:
    return [{"backend": "tensorrt", "engine_dir": str(engine_dir)}, {"backend": "onnxruntime"}]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def setup_config(extra: dict[str, Any], state_dir: Path, engine_dir: Path | None = None) -> AppConfig:
    """The room's configuration for one set-up: the defaults, the demo pack, ``extra`` on top."""
    from edge.config.load import parse_config

    return parse_config(
        {
            "room": {"site": "bench", "room": "r1", "device_id": "bench"},
            "models": {"pack": str(PACK), "trusted_keys": [str(PACK_KEY)]},
            "storage": {"state_dir": str(state_dir)},
            "mqtt": {"enabled": False},
            "metrics": {"enabled": False},
            **({} if engine_dir is None else {"inference": {"backends": _backends(engine_dir)}}),
            **extra,
        },
        state_dir,
    )


def run_setup(extra: dict[str, Any], engine_dir: Path | None = None) -> dict[str, Any]:
    from edge.control import Consent
    from edge.runtime import Appliance

    with tempfile.TemporaryDirectory() as tmp:
        config = setup_config(extra, Path(tmp), engine_dir)
        appliance = Appliance(config, DEMO.as_uri())
        report = appliance.run(consent=Consent(method="written", recorded_by="benchmark"))
        conn = sqlite3.connect(report.database)
        timings = [json.loads(r[0]) for r in conn.execute("SELECT timing FROM windows")]
        conn.close()
    stages = {}
    for stage in STAGES:
        values = [t[stage] for t in timings if stage in t]
        if values:
            stages[stage] = {"median": round(statistics.median(values), 2), "windows": len(values)}
    latency = list(report.window_latency_ms)
    return {
        "fps": round(report.fps, 2),
        "windows": report.windows,
        "window_to_store_p50_ms": _pct(latency, 0.5),
        "window_to_store_p95_ms": _pct(latency, 0.95),
        "stages": stages,
    }


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    base = results["setups"]["face only"]["fps_median"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']} ({results['date']}); demo clip (14 s, "
        f"analysed at 10 fps), median of {results['repeats']} runs after a warm-up.",
        "",
        "| set-up | frames/s (range) | vs face only | window -> stored p50 / p95 ms |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in results["setups"].items():
        lines.append(
            f"| {name} | {r['fps_median']} ({r['fps_range'][0]}-{r['fps_range'][1]}) | "
            f"{r['fps_median'] / base:.2f}x | {r['p50_ms']} / {r['p95_ms']} |"
        )
    lines += ["", "Median cost per window (ms; frame stages are summed over the window's 25 frames):", ""]
    names = list(results["setups"])
    lines += ["| stage | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for stage in STAGES:
        cells = [str(results["setups"][n]["stages"].get(stage, "-")) for n in names]
        if any(c != "-" for c in cells):
            lines.append(f"| {stage.removesuffix('_ms')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--engine-dir", type=Path, default=None, help="TensorRT engines built from the pack")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for path in (DEMO, PACK / "pack.json", GGML):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run scripts/setup.sh")
    setups = {}
    for name, extra in SETUPS.items():
        runs = [run_setup(extra, args.engine_dir) for _ in range(args.repeats + 1)][1:]
        fps = [r["fps"] for r in runs]
        stages: dict[str, float] = {}
        for stage in STAGES:
            values = [r["stages"][stage]["median"] for r in runs if stage in r["stages"]]
            if values:
                stages[stage] = round(statistics.median(values), 2)
        setups[name] = {
            "fps_median": round(statistics.median(fps), 2),
            "fps_range": [min(fps), max(fps)],
            "p50_ms": round(statistics.median(r["window_to_store_p50_ms"] for r in runs), 1),
            "p95_ms": round(statistics.median(r["window_to_store_p95_ms"] for r in runs), 1),
            "stages": stages,
            "runs": runs,
        }
        print(f"{name}: {setups[name]['fps_median']} fps", flush=True)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "repeats": args.repeats,
        "machine": machine(),
        "engine_dir": None if args.engine_dir is None else str(args.engine_dir),
        "setups": setups,
    }
    write_results(args.out, "channels", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
