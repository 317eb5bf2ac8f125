"""The whole benchmark suite in one command, and a summary against the product's targets.

Runs, one after the other on an otherwise idle machine (each step is its own script, also runnable
alone, and writes its own ``<step>-<machine>.json`` and ``.md``):

  models        per-model latency FP32 / INT8 / FP16 on ONNX Runtime (and TensorRT with
                ``--engine-dir``), INT8 agreement with FP32                  (models.py)
  channels      per-stage cost per window against a face-only room           (channels.py)
  fer-baseline  the room's face path against the ``fer`` package's pipeline  (fer_baseline.py)
  transcribe    whisper.cpp against faster-whisper on the same recording     (transcribe.py)
  profile       where one room's CPU and memory go at the defaults, by library, thread, stage
                timer and loading step                                       (profile_room.py)
  profile-mjpeg the same room's CPU and memory with the recording's picture as Motion JPEG, as a
                USB camera delivers it                                       (profile_room.py)
  rooms-staff   rooms per device at the defaults with a staff voice enrolled in every room (words,
                speaker attribution, voice cues, pulse: the room's whole work)  (rooms.py --staff);
                the same in one process per device (rooms-one-process-staff), and four rooms for
                ten minutes (rooms-staff-602s)
  rooms         rooms per device with audio, window end -> MQTT p50/p95/p99, memory, CPU
                (rooms.py), as configured by default, with face detection every 3rd frame, with
                the transcript (whisper.cpp), with the transcript by faster-whisper plus
                detection every 3rd frame, and as configured by default with all rooms in one
                process sharing the models (rooms-one-process)
  appliance     the demo room's throughput and ONNX Runtime against PyTorch  (run.py)

then writes ``suite-<machine>.json`` and ``.md`` (after ``--only``, the steps run replace theirs in
the previous summary and the others are kept): the machine (CPU, features, memory, board), each
step's status and duration, the targets with the measured figure and whether it is met, and every
step's table. A failing step is recorded with its reason and the suite goes on.

Usage: .venv/bin/python benchmarks/suite.py [--quick] [--engine-dir ENGINES] [--only STEP ...]
  --quick        fewer repeats and calls, for checking the suite itself (figures are rougher;
                 written to build/bench-quick, never over the recorded results)
  --engine-dir   TensorRT engines (built from the pack into this folder by the models step) are
                 used by every step that runs the room: the Jetson run (benchmarks/jetson.sh)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results_io import interrupt_on_sigterm, machine, stop, tag, write_results
from rooms import P95_BOUND_MS, within

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
CNNS = ("face-fer-minixception", "face-cnn", "speech-cnn1d", "speech-cnn2d", "rppg-cnn1d")


@dataclass(frozen=True)
class Step:
    name: str  # the results file's name (without the machine tag)
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]  # arguments that make it shorter with --quick
    uses_engines: bool = False  # takes --engine-dir

    def command(self, quick: bool, engine_dir: Path | None, out: Path) -> list[str]:
        cmd = [sys.executable, str(HERE / self.script), *self.args, *(self.quick if quick else ()), "--out", str(out)]
        if engine_dir is not None and self.uses_engines:
            cmd += ["--engine-dir", str(engine_dir)]
        return cmd


STEPS = (
    Step("models", "models.py", (), ("--runs", "50", "--epochs", "2"), uses_engines=True),
    Step("channels", "channels.py", ("--repeats", "2"), ("--repeats", "1"), uses_engines=True),
    Step("fer-baseline", "fer_baseline.py", ("--repeats", "3"), ("--repeats", "1")),
    Step("transcribe", "transcribe.py", ("--repeats", "5"), ("--repeats", "1", "--live-runs", "1")),
    Step("disparity", "disparity.py", (), ("--voices", "1")),
    Step("profile", "profile_room.py", (), ("--no-perf",)),
    Step("profile-mjpeg", "profile_room.py", ("--no-perf", "--video", "mjpeg"), ("--no-perf", "--video", "mjpeg")),
    Step(
        "rooms-staff",
        "rooms.py",
        ("--max-rooms", "6", "--staff", "--repeats", "1"),
        ("--max-rooms", "2", "--staff", "--repeats", "1"),
        uses_engines=True,
    ),
    Step("rooms", "rooms.py", ("--max-rooms", "6", "--repeats", "2"), ("--max-rooms", "2", "--repeats", "1"), True),
    Step(
        "rooms-nowords",
        "rooms.py",
        ("--max-rooms", "6", "--words", "off", "--repeats", "2"),
        ("--max-rooms", "2", "--words", "off", "--repeats", "1"),
        True,
    ),
    Step(
        "rooms-detect3",
        "rooms.py",
        ("--max-rooms", "8", "--detect-every", "3", "--repeats", "2"),
        ("--max-rooms", "2", "--repeats", "1"),
        uses_engines=True,
    ),
    Step(
        "rooms-detect3-mesh3",
        "rooms.py",
        ("--max-rooms", "8", "--detect-every", "3", "--mesh-every", "3", "--repeats", "2"),
        ("--max-rooms", "2", "--repeats", "1"),
        uses_engines=True,
    ),
    Step(
        "rooms-words",
        "rooms.py",
        ("--max-rooms", "4", "--words", "whisper.cpp", "--repeats", "2"),
        ("--max-rooms", "1", "--repeats", "1"),
        True,
    ),
    Step(
        "rooms-words-fw-detect3",
        "rooms.py",
        ("--max-rooms", "4", "--words", "faster-whisper", "--detect-every", "3", "--repeats", "2"),
        ("--max-rooms", "1", "--repeats", "1"),
        uses_engines=True,
    ),
    Step(
        "rooms-one-process",
        "rooms.py",
        ("--max-rooms", "6", "--repeats", "2", "--one-process"),
        ("--max-rooms", "2", "--repeats", "1"),
        uses_engines=True,
    ),
    Step(
        "rooms-one-process-staff",
        "rooms.py",
        ("--max-rooms", "6", "--repeats", "1", "--one-process", "--staff"),
        ("--max-rooms", "2"),
        uses_engines=True,
    ),
    Step(
        "rooms-staff-602s",
        "rooms.py",
        ("--min-rooms", "4", "--max-rooms", "4", "--staff", "--minutes", "10"),
        ("--min-rooms", "1", "--max-rooms", "1"),
        uses_engines=True,
    ),
    Step("appliance", "run.py", ("--repeats", "3"), ("--repeats", "1", "--runs", "50")),
    Step(
        "hub-scale",
        "hub_scale.py",
        (),
        ("--burst", "6000", "--rooms", "200", "--seconds", "5", "--sessions", "20000", "--page-requests", "10"),
    ),
)


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _load(out: Path, name: str) -> dict[str, Any] | None:
    stem = tag() if name == "appliance" else f"{name}-{tag()}"  # run.py writes the bare tag
    path = out / f"{stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _rooms(n: int) -> str:
    return f"{n} room{'' if n == 1 else 's'}"


def _count(result: dict[str, Any]) -> str:
    """Rooms per device, saying so when the run stopped at its limit rather than at saturation."""
    text = _rooms(result["rooms_per_device"])
    return f"at least {text} (the run's --max-rooms)" if result.get("limited") else text


def _target(goal: str, measured: str, met: bool | None) -> dict[str, Any]:
    return {"target": goal, "measured": measured, "met": met}


def _sharing(separate: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Rooms in one process sharing the models against a process per room, at the most rooms both ran
    in real time (or, failing that, at the most rooms both ran)."""
    goal = "one process sharing the models against a process per room (no target set)"
    counts = [{r["rooms"] for r in result["runs"] if r["realtime"]} for result in (separate, shared)]
    both = counts[0] & counts[1] or {r["rooms"] for r in separate["runs"]} & {r["rooms"] for r in shared["runs"]}
    if not both:
        return _target(goal, "no room count ran both ways", None)
    n = max(both)
    a = next(r for r in separate["runs"] if r["rooms"] == n)
    b = next(r for r in shared["runs"] if r["rooms"] == n)
    ratio = a["peak_rss_mib_total"] / b["peak_rss_mib_total"] if b.get("peak_rss_mib_total") else float("nan")
    return _target(
        goal,
        f"{n} rooms: memory {b['peak_rss_mib_total']} against {a['peak_rss_mib_total']} MiB ({ratio:.2f}x less), "
        f"p95 {b['latency_p95_ms']} against {a['latency_p95_ms']} ms; real time {_count(shared)} against "
        f"{_count(separate)}",
        None,
    )


def _capacity(rooms: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rooms in real time at the room's defaults (the words channel on)."""
    if not rooms:
        return []
    return [
        _target(
            ">= 4 rooms in real time at 10 fps analysis with audio",
            _count(rooms),
            True if rooms["rooms_per_device"] >= 4 else None if rooms.get("limited") else False,
        )
    ]


def _at(result: dict[str, Any], n: int) -> dict[str, Any] | None:
    return next((r for r in result["runs"] if r["rooms"] == n), None)


def _defaults(results: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The targets for the room's defaults: one room's share of the machine, rooms in real time with
    the whole work (a staff voice enrolled), windows without speech not held, words soon after."""
    rows = []
    profile = results.get("profile")
    if profile:
        p = profile["profile"]
        rows.append(
            _target(
                "one room at the defaults: <= 20 % of both cores",
                f"{100 * p['cpu_share']:.1f} %",
                p["cpu_share"] <= 0.20,
            )
        )
    memory = (
        ("profile", "one room at the defaults: <= 450 MiB resident"),
        (
            "profile-mjpeg",
            "one room at the defaults, its picture as a USB camera delivers it (Motion JPEG): <= 450 MiB resident",
        ),
    )
    for step, label in memory:
        run = results.get(step)
        if run:
            p = run["profile"]
            measured = f"{p['rss_mib_peak']} MiB (peak; {p.get('rss_mib_steady', '-')} over the run's second half)"
            rows.append(_target(label, measured, p["rss_mib_peak"] <= 450))
    staff = results.get("rooms-staff")
    if staff:
        enough = staff["rooms_per_device"] >= 5
        rows.append(
            _target(
                ">= 5 rooms in real time at the defaults (words on, one staff voice enrolled)",
                _count(staff),
                True if enough else None if staff.get("limited") else False,
            )
        )
        at4 = _at(staff, 4)
        # windows without the client's speech; older results only had windows without words
        quiet = None if at4 is None else at4.get("latency_p95_speechless_ms", at4.get("latency_p95_quiet_ms"))
        rows.append(
            _target(
                "p95 window end -> MQTT < 300 ms for windows without client speech, at 4 rooms (defaults)",
                "not reached" if quiet is None else f"{quiet} ms",
                None if quiet is None else quiet < 300,
            )
        )
        shed = None if at4 is None else at4.get("utterances_skipped")
        rows.append(
            _target(
                "no speech shed at 4 rooms (defaults, the 56 s recording)",
                "not reached" if shed is None else f"{shed} stretches shed",
                None if shed is None else shed == 0,
            )
        )
    long = results.get("rooms-staff-602s")
    at4 = None if not long else _at(long, 4)
    if at4 is not None:
        rows.append(
            _target(
                "no speech shed at 4 rooms in a 10-minute run (defaults)",
                f"{at4['utterances_skipped']} stretches shed; real time: {'yes' if at4['realtime'] else 'no'}",
                at4["utterances_skipped"] == 0 and at4["realtime"],
            )
        )
    shared = results.get("rooms-one-process-staff")
    if shared:
        at4 = _at(shared, 4)
        rows.append(
            _target(
                ">= 5 rooms in real time at the defaults in one process per device (no target set for the layout)",
                _count(shared),
                None,
            )
        )
        rows.append(
            _target(
                "<= 450 MiB resident per room, one process per device, at 4 rooms (defaults)",
                "not reached" if at4 is None else f"{at4['peak_rss_mib_per_room']} MiB",
                None if at4 is None else at4["peak_rss_mib_per_room"] <= 450,
            )
        )
    words = results.get("transcribe")
    if words:
        default = next((r for label, r in words.items() if "the default" in label), None)
        delays = sorted(d for run in (default or {}).get("live", []) for d in run["delays_s"])
        if delays:
            p50 = delays[(len(delays) - 1) // 2]
            rows.append(
                _target("words readable by the windows p50 <= 3 s after they were said", f"{p50:.1f} s", p50 <= 3.0)
            )
    return rows


def targets(results: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The targets of the performance issues, each with what the suite measured."""
    rooms = results.get("rooms")
    rows = _defaults(results) + _capacity(rooms)
    nowords = results.get("rooms-nowords")
    if nowords:
        at4 = next((r for r in nowords["runs"] if r["rooms"] == 4), None)
        rows.append(
            _target(
                "p95 window end -> MQTT < 300 ms without transcript, at 4 rooms",
                "not reached" if at4 is None else f"{at4['latency_p95_ms']} ms",
                None if at4 is None else at4["latency_p95_ms"] < 300,
            )
        )
    detect3 = results.get("rooms-detect3")
    if detect3:
        at4 = next((r for r in detect3["runs"] if r["rooms"] == 4), None)
        rows.append(
            _target(
                "the same with face detection every 3rd frame (vision.detect_every = 3)",
                f"{_count(detect3)}; p95 at 4 rooms "
                + ("not reached" if at4 is None else f"{at4['latency_p95_ms']} ms"),
                None if at4 is None else detect3["rooms_per_device"] >= 4 and at4["latency_p95_ms"] < 300,
            )
        )
    for name, label in (
        ("rooms", "as configured by default"),
        ("rooms-detect3", "face detection every 3rd frame"),
        ("rooms-detect3-mesh3", "face detection and face mesh every 3rd frame"),
    ):
        if results.get(name):
            rows.append(
                _target(
                    f"rooms in real time with p95 under {P95_BOUND_MS:.0f} ms ({label}; no target set)",
                    _rooms(within(results[name]["runs"])),
                    None,
                )
            )
    for name, label in (("rooms-words", "whisper.cpp"), ("rooms-words-fw-detect3", "faster-whisper, detection 1/3")):
        words = results.get(name)
        if words:
            rows.append(
                _target(
                    f"rooms in real time with audio and transcript ({label}; no target set)",
                    _count(words),
                    None,
                )
            )
    shared = results.get("rooms-one-process")
    if rooms and shared:
        rows.append(_sharing(rooms, shared))
    models = results.get("models")
    if models:
        for row in models["models"]:
            if row["model"] not in CNNS:
                continue
            int8 = row["variants"].get("int8", {})
            speed, agreement = int8.get("speedup_vs_fp32_batch1"), int8.get("top1_agreement_with_fp32")
            spread = int8.get("speedup_vs_fp32_batch1_range")
            rounds = f" (rounds {spread[0]}-{spread[1]}x)" if spread else ""
            rows.append(
                _target(
                    f"INT8 >= 1.5x FP32 with >= 99 % top-1 agreement: {row['model']} (ONNX Runtime, batch 1)",
                    f"{speed}x{rounds}, {'n/a' if agreement is None else f'{100 * agreement:.1f} %'}",
                    None if speed is None or agreement is None else speed >= 1.5 and agreement >= 0.99,
                )
            )
    fer = results.get("fer-baseline")
    if fer:
        room = fer["rows"][0]["ms_per_frame_mean"]
        theirs = next((r for r in fer["rows"] if r["pipeline"].endswith("defaults)")), None)
        if theirs is not None:
            rows.append(
                _target(
                    "face path faster than the fer package's on the same frames",
                    f"{room} ms vs {theirs['ms_per_frame_mean']} ms per frame "
                    f"({theirs['ms_per_frame_mean'] / room:.2f}x faster)",
                    theirs["ms_per_frame_mean"] > room,
                )
            )
    rows += _hub(results.get("hub-scale"))
    return rows


def _hub(hub: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The hub-at-scale targets: stored rate, publish -> commit delay, dashboard pages."""
    if not hub:
        return []
    rows = []
    runs = hub.get("runs", [])
    if runs:
        best = max(runs, key=lambda r: r["stored_per_s"])
        rows.append(
            _target(
                ">= 3000 summaries/s stored through mosquitto into PostgreSQL",
                f"{best['stored_per_s']:.0f}/s with {best['workers']} worker(s)",
                best["stored_per_s"] >= 3000,
            )
        )
        worst = max(runs, key=lambda r: r["lag_p95_ms"])
        rows.append(
            _target(
                f"publish -> committed p95 < 500 ms at {worst['paced_rooms']} rooms",
                f"{worst['lag_p95_ms']:.0f} ms (worst of {len(runs)} worker counts)",
                worst["lag_p95_ms"] < 500,
            )
        )
    dashboard = hub.get("dashboard")
    if dashboard:
        slowest = max(t["p95_ms"] for t in dashboard["pages"].values())
        rows.append(
            _target(
                f"dashboard page p95 < 200 ms at {dashboard['sessions']:,} sessions",
                f"{slowest:.0f} ms (slowest of {len(dashboard['pages'])} pages)",
                slowest < 200,
            )
        )
    return rows


def markdown(summary: dict[str, Any], out: Path) -> str:
    m = summary["machine"]
    lines = [
        f"Machine: {m.get('board') or m['cpu_model']}, {m['cpus']} CPUs ({m['machine']}; features: "
        f"{', '.join(m['cpu_features']) or 'none listed'}), {m['memory_gib']} GiB, {m['system']}, Python "
        f"{m['python']}. Suite run {summary['started']} - {summary['finished']}"
        f"{' (--quick: rough figures)' if summary['quick'] else ''}"
        f"{', TensorRT engines from ' + summary['engine_dir'] if summary['engine_dir'] else ''}.",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for t in summary["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    lines += ["", "| step | status | minutes | finished |", "| --- | --- | --- | --- |"]
    for s in summary["steps"]:
        lines.append(f"| {s['name']} | {s['status']} | {s['minutes']} | {s.get('finished') or '-'} |")
    for s in summary["steps"]:
        table = out / (tag() + ".md" if s["name"] == "appliance" else f"{s['name']}-{tag()}.md")
        if s["status"] == "ok" and table.is_file():
            lines += ["", f"### {s['name']}", "", table.read_text(encoding="utf-8").strip()]
    return "\n".join(lines) + "\n"


def main() -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--engine-dir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=[s.name for s in STEPS], default=None)
    parser.add_argument(
        "--summary-only", action="store_true", help="run nothing; summarise the results files already in --out"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/results (build/bench-quick with --quick)"
    )
    args = parser.parse_args()
    if args.out is None:
        args.out = ROOT / "build" / "bench-quick" if args.quick else ROOT / "benchmarks" / "results"
    started = now()
    steps = []
    for step in STEPS:
        if args.only and step.name not in args.only:
            continue
        if args.summary_only:
            found = _load(args.out, step.name) is not None
            steps.append({"name": step.name, "status": "ok" if found else "no results", "minutes": None})
            continue
        print(f"=== {step.name}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(step.command(args.quick, args.engine_dir, args.out), cwd=ROOT, text=True)
        try:
            code = proc.wait()
        except BaseException:
            stop([proc])  # the step stops its own rooms and broker before it exits
            raise
        status = "ok" if code == 0 else f"failed (exit {code}; see its output above)"
        minutes = round((time.monotonic() - t0) / 60, 1)
        steps.append({"name": step.name, "status": status, "minutes": minutes, "finished": now()})
    # A partial run (--only) updates its steps; the summary covers the latest results of every step.
    previous = _load(args.out, "suite")
    merged = {s["name"]: s for s in (previous or {}).get("steps", [])} if args.only or args.summary_only else {}
    merged.update({s["name"]: s for s in steps if not (args.summary_only and s["name"] in merged)})
    steps = [merged[s.name] for s in STEPS if s.name in merged]
    loaded = {s["name"]: _load(args.out, s["name"]) for s in steps if s["status"] == "ok"}
    whole = previous is not None and (args.only or args.summary_only)
    summary = {
        "started": previous["started"] if whole else started,
        "finished": previous["finished"] if previous is not None and args.summary_only else now(),
        "quick": args.quick,
        "engine_dir": None if args.engine_dir is None else str(args.engine_dir),
        "machine": machine(),
        "steps": steps,
        "targets": targets(loaded),
    }
    write_results(args.out, "suite", summary, markdown(summary, args.out))
    return 0 if all(s["status"] == "ok" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
