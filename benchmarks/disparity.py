"""Disparity events on generated clips, and the thresholds they support.

Each clip is a photograph of a face (``scripts/make_scene.py``) with about ten seconds of speech
synthesised by espeak-ng in one of several voices:

  incongruent   the smiling astronaut with clearly sad words (an event is wanted)
  congruent     the smiling astronaut with happy words, or Grace Hopper's calm face with neutral
                words (no event is wanted)

Every clip runs through the appliance at the room's defaults (face, voice, words, fusion, as a
file: the result does not depend on the machine's speed). The per-window disparity scores are then
replayed through the room's own event tracker for a grid of thresholds and minimum durations; the
table gives, per setting, the share of incongruent clips with an event (hit rate) and of congruent
clips with one (false alarms), and the defaults' row is marked.

Usage: .venv/bin/python benchmarks/disparity.py [--voices N] [--keep DIR]
Writes benchmarks/results/disparity-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results_io import tag, write_results

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "build" / "models" / "pack"
PACK_KEY = ROOT / "build" / "keys" / "pack-signing.key.pub"
VOICES = ("en-us", "en-us+f3", "en-gb+m3", "en-us+f4", "en-gb-scotland")
DURATION_S = 16.0
SAD = (
    (
        "I feel so sad and alone. Nothing I do matters anymore.",
        "I cry every night and I feel empty and hopeless.",
    ),
    (
        "Since she died I have been miserable. I miss her every single day.",
        "Everything feels grey and heavy and I am so tired of it.",
    ),
    (
        "I failed again and I hate myself for it. I am worthless.",
        "I feel lonely and depressed and I do not want to get up.",
    ),
)
HAPPY = (
    (
        "I had a wonderful week. I got the job I wanted and I am so happy.",
        "We celebrated with friends, it was great fun.",
    ),
    (
        "I feel really good today, things are going well at last.",
        "My daughter visited and we laughed all afternoon, I loved it.",
    ),
)
NEUTRAL = (
    (
        "I took the bus this morning and then I had a meeting about the schedule.",
        "After that I went home and cooked dinner.",
    ),
    (
        "The appointment was moved to Tuesday at ten, so I changed my plans.",
        "I will bring the forms and the letter from the office.",
    ),
)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
DURATIONS = (2.0, 3.0, 5.0, 7.0)


@dataclass(frozen=True)
class Clip:
    kind: str  # incongruent | congruent
    name: str
    photo: str
    voice: str
    sentences: tuple[str, str]


def clips(voices: int) -> list[Clip]:
    out = []
    for voice in VOICES[:voices]:
        for i, said in enumerate(SAD):
            out.append(Clip("incongruent", f"smile-sad{i}-{voice}", "astronaut", voice, said))
        for i, said in enumerate(HAPPY):
            out.append(Clip("congruent", f"smile-happy{i}-{voice}", "astronaut", voice, said))
        for i, said in enumerate(NEUTRAL):
            out.append(Clip("congruent", f"calm-neutral{i}-{voice}", "hopper", voice, said))
    return out


def _scene() -> Any:
    spec = importlib.util.spec_from_file_location("make_scene", ROOT / "scripts" / "make_scene.py")
    if spec is None or spec.loader is None:
        raise SystemExit("scripts/make_scene.py is missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def make(clip: Clip, folder: Path) -> Path:
    scene = _scene()
    speech = [(1.0, clip.sentences[0]), (7.0, clip.sentences[1])]
    return Path(
        scene.compose(folder / f"{clip.name}.mkv", [scene.Shot(0.0, clip.photo)], speech, DURATION_S, voice=clip.voice)
    )


def run(clip_file: Path, folder: Path) -> list[tuple[float, float, float | None]]:
    """The clip through the appliance at the defaults; (start, end, disparity score) per window."""
    from edge.config import load_config
    from edge.control import Consent
    from edge.runtime import Appliance

    config_file = folder / "room.toml"
    config_file.write_text(
        f'[room]\nsite = "bench"\nroom = "disparity"\ndevice_id = "bench-disparity"\n'
        f'[models]\npack = "{PACK}"\ntrusted_keys = ["{PACK_KEY}"]\n[storage]\nstate_dir = "{folder / "state"}"\n'
        "[metrics]\nport = 0\n[mqtt]\nenabled = false\n",
        encoding="utf-8",
    )
    report = Appliance(load_config(config_file), clip_file.as_uri()).run(
        consent=Consent(method="written", recorded_by="benchmark", reference="disparity")
    )
    conn = sqlite3.connect(report.database)
    rows = conn.execute(
        "SELECT start_s, end_s, disparity FROM windows WHERE session_id = ? ORDER BY idx", (report.session_id,)
    ).fetchall()
    conn.close()
    return [(a, b, json.loads(d)["score"] if d else None) for a, b, d in rows]


def events(scores: list[tuple[float, float, float | None]], threshold: float, min_duration_s: float) -> int:
    """Events the room's tracker makes from the windows' scores at these settings."""
    from edge.disparity.score import DisparityTracker
    from edge.results import Disparity

    tracker = DisparityTracker(threshold, min_duration_s)
    found = 0
    for start, end, score in scores:
        found += tracker.add(start, end, None if score is None else Disparity(score, ("a", "b"), {})) is not None
    return found + (tracker.close() is not None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", type=int, default=len(VOICES), help="espeak-ng voices to use (1-5)")
    parser.add_argument("--keep", type=Path, help="keep the clips in this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--scores", type=Path, help="a results .json written before: recompute the table from its scores (no clips)"
    )
    args = parser.parse_args()
    from edge.config.models import DisparityConfig

    defaults = DisparityConfig()
    if args.scores is not None:
        measured = json.loads(args.scores.read_text(encoding="utf-8"))["clips"]
        for m in measured:
            m["scores"] = [tuple(s) for s in m["scores"]]
            m["events_at_defaults"] = events(m["scores"], defaults.threshold, defaults.min_duration_s)
        args.voices = len({m["clip"].split("-", 2)[2] for m in measured})
    else:
        measured = _measure(args.voices, args.keep, defaults)
    _write(measured, defaults, args.voices, args.out)
    return 0


def _measure(voices: int, keep: Path | None, defaults: Any) -> list[dict[str, Any]]:
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="clinic-disparity-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips(voices):
            started = time.perf_counter()
            clip_file = make(clip, folder)
            work = folder / clip.name
            work.mkdir(exist_ok=True)
            scores = run(clip_file, work)
            values = [s for _, _, s in scores if s is not None]
            measured.append(
                {
                    "clip": clip.name,
                    "kind": clip.kind,
                    "scores": scores,
                    "peak": max(values, default=None),
                    "events_at_defaults": events(scores, defaults.threshold, defaults.min_duration_s),
                }
            )
            print(
                clip.name,
                measured[-1]["peak"],
                measured[-1]["events_at_defaults"],
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
    return measured


def _write(measured: list[dict[str, Any]], defaults: Any, voices: int, out: Path) -> None:
    grid = []
    for threshold in THRESHOLDS:
        for duration in DURATIONS:
            hits = [events(m["scores"], threshold, duration) > 0 for m in measured if m["kind"] == "incongruent"]
            alarms = [events(m["scores"], threshold, duration) > 0 for m in measured if m["kind"] == "congruent"]
            grid.append(
                {
                    "threshold": threshold,
                    "min_duration_s": duration,
                    "hit_rate": round(sum(hits) / len(hits), 3) if hits else None,
                    "false_alarm_rate": round(sum(alarms) / len(alarms), 3) if alarms else None,
                    "default": threshold == defaults.threshold and duration == defaults.min_duration_s,
                }
            )
    incongruent = [m for m in measured if m["kind"] == "incongruent"]
    congruent = [m for m in measured if m["kind"] == "congruent"]
    lines = [
        f"Machine: {tag()} ({time.strftime('%Y-%m-%d %H:%M:%S')}); {len(measured)} clips of {DURATION_S:.0f} s "
        f"({len(incongruent)} incongruent: a smiling face with sad words; {len(congruent)} congruent: a smiling "
        f"face with happy words or a calm face with neutral words), {voices} espeak-ng voices, the room's "
        f"defaults (disparity.threshold {defaults.threshold}, min_duration_s {defaults.min_duration_s}).",
        "",
        f"At the defaults: events on {sum(m['events_at_defaults'] > 0 for m in incongruent)} of "
        f"{len(incongruent)} incongruent clips, on {sum(m['events_at_defaults'] > 0 for m in congruent)} of "
        f"{len(congruent)} congruent clips. Highest window score on a congruent clip: "
        f"{max((m['peak'] or 0.0) for m in congruent):.3f}; lowest peak on an incongruent clip: "
        f"{min((m['peak'] or 0.0) for m in incongruent):.3f}.",
        "",
        "| threshold | min duration s | hit rate (incongruent) | false alarms (congruent) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {g['threshold']}{' (default)' if g['default'] else ''} | {g['min_duration_s']} | "
            f"{g['hit_rate']} | {g['false_alarm_rate']} |"
            for g in grid
        ),
        "",
    ]
    write_results(out, "disparity", {"clips": measured, "grid": grid}, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
