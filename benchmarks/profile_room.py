"""Where one room's CPU time and memory go at the room's defaults.

One room (`clinic-edge run`, every channel at its defaults, one staff voice enrolled so speaker
attribution runs) plays the 56 s demo recording in real time and publishes to a local mosquitto,
as `benchmarks/rooms.py` runs it. Measured:

* CPU by native library (perf, sampled at 199 Hz with call graphs, where `perf` is installed:
  Debian's linux-perf): each library stands for a stage (CTranslate2 = speech to text, MediaPipe =
  face detection and mesh, ONNX Runtime = the face, text, speaker and voice-activity models,
  Praat = voice cues, libav/GStreamer = decoding and capture, the interpreter = the Python glue of
  windows, fusion, storage and publishing, the kernel = system calls, page faults, scheduling);
* CPU by thread (from /proc, every 0.3 s): the total, and the share of the busiest threads;
* the stage timers every stored window carries (milliseconds per window on the analysis thread);
* memory: resident size once the models are loaded and at its peak, and, in a separate process,
  what importing each library and loading each model adds.

Usage: .venv/bin/python benchmarks/profile_room.py [--no-perf] [--video mjpeg]
Writes benchmarks/results/profile-<machine>.json and .md (profile-mjpeg-<machine> for --video mjpeg:
the demo's picture re-encoded as Motion JPEG, what a USB camera delivers, in place of its H.264).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from results_io import evict_page_cache, interrupt_on_sigterm, machine, stop, write_results
from rooms import ROOM_FILES, ROOT, VIDEOS, Setup, _config, _enrol, _free_port, _wait_for_broker

TICK = os.sysconf("SC_CLK_TCK")
# A native library's file name (its start) -> the stage it stands for.
LIBRARIES = (
    ("libctranslate2", "speech to text (Whisper on CTranslate2)"),
    ("libgomp", "speech to text (Whisper on CTranslate2)"),
    ("_framework_bindings", "face detection and mesh (MediaPipe)"),
    ("onnxruntime", "ONNX models (face, text, speaker, voice activity)"),
    ("parselmouth", "voice cues (Praat)"),
    ("libav", "decoding the recording (libav)"),
    ("libgst", "capture (GStreamer)"),
    ("orcexec", "capture (GStreamer)"),
    ("libvorbis", "decoding the recording (libav)"),
    ("python3", "Python: windows, channels' glue, fusion, storage, publishing"),
    # Code generated at run time: in the room only CTranslate2's matrix kernels are (perf finds these
    # samples on the transcription threads alone; Python 3.11 compiles nothing to machine code).
    ("[JIT]", "speech to text (Whisper on CTranslate2)"),
    ("_multiarray", "numpy"),
    ("libopenblas", "numpy"),
    ("libscipy_openblas", "numpy"),
    ("cv2", "OpenCV (face alignment)"),
    ("[kernel", "kernel: system calls, page faults, scheduling"),
    ("libc.so", "C library: memory allocation, copies, locks"),
)

MEMORY_PROBE = textwrap.dedent(
    """
    import glob, json, os, sys
    steps = []
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    last = rss()
    def step(name):
        global last
        now = rss(); steps.append((name, round(now - last, 1))); last = now
    steps.append(("Python interpreter", round(last, 1)))
    import edge, numpy; step("numpy")
    import onnxruntime; step("ONNX Runtime (library)")
    import cv2; from edge.vision.solutions import solution
    detection, mesh = solution("face_detection"), solution("face_mesh"); step("MediaPipe and OpenCV (libraries)")
    detection.FaceDetection(model_selection=1); step("MediaPipe face detection")
    mesh.FaceMesh(max_num_faces=1); step("MediaPipe face mesh")
    import parselmouth; from edge.native_pages import release_static_zeros
    release_static_zeros(); step("Praat (parselmouth), its static zeros released")
    from edge.deferred import import_module
    WhisperModel = import_module("faster_whisper").WhisperModel; step("faster-whisper (library; PyAV deferred)")
    from export.whisper_ggml import packaged_model_dir
    WhisperModel(str(packaged_model_dir()), device="cpu", compute_type="int8", cpu_threads=1)
    step("Whisper tiny.en (int8)")
    import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst; Gst.init(None); step("GStreamer")
    keep = []
    # the variants a room runs at the defaults: FP32, the text model's INT8 where the pack has it
    for path in sorted(glob.glob(sys.argv[1] + "/*/*.fp32.onnx")):
        if os.path.basename(path).startswith("text-") and os.path.exists(path.replace(".fp32.", ".int8.")):
            path = path.replace(".fp32.", ".int8.")
        keep.append(onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]))
        mapped = os.path.exists(path + ".data")  # weights beside the graph: mapped, not read
        size = os.path.getsize(path) + (os.path.getsize(path + ".data") if mapped else 0)
        step(os.path.basename(path) + f" ({size / 2**20:.0f} MiB" + (", weights mapped)" if mapped else " file)"))
    print(json.dumps({"steps": steps, "total": round(rss(), 1)}))
    """
)


def _perf_report(data: Path, sort: str) -> list[str]:
    """The lines of `perf report --sort SORT` (percentages of all samples, no call graphs)."""
    return subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", sort, "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


def _stage(library: str) -> str:
    return next((s for prefix, s in LIBRARIES if library.startswith(prefix)), "other libraries")


def _perf_by_library(data: Path) -> dict[str, float]:
    """Share of CPU samples (percent) by stage, from `perf report --sort dso`."""
    stages: Counter[str] = Counter()
    for line in _perf_report(data, "dso"):
        m = re.match(r"\s*([\d.]+)%\s+(.+?)\s*$", line)
        if m:
            stages[_stage(m.group(2))] += float(m.group(1))
    return {k: round(v, 1) for k, v in stages.most_common()}


GENERIC = {
    "kernel: system calls, page faults, scheduling",
    "C library: memory allocation, copies, locks",
    "other libraries",
}


def _perf_by_thread(data: Path) -> dict[str, dict[str, float]]:
    """Share of CPU samples (percent) by the stage each thread works for, kernel and C library time
    included: a thread belongs to the stage whose libraries most of its own samples are in (the
    kernel's share of a stage is what its threads cost in system calls, page faults and waking
    each other)."""
    by_tid: dict[str, Counter[str]] = {}
    for line in _perf_report(data, "pid,dso"):  # perf's "pid" is the thread: "tid:name"
        m = re.match(r"\s*([\d.]+)%\s+(\d+):\S*\s+(.+?)\s*$", line)
        if m:
            by_tid.setdefault(m.group(2), Counter())[_stage(m.group(3))] += float(m.group(1))
    stages: dict[str, dict[str, float]] = {}
    for samples in by_tid.values():
        own = Counter({k: v for k, v in samples.items() if k not in GENERIC})
        stage = own.most_common(1)[0][0] if own else "other libraries"
        row = stages.setdefault(stage, {"pct": 0.0, "kernel_pct": 0.0, "threads": 0})
        row["pct"] += sum(samples.values())
        row["kernel_pct"] += samples["kernel: system calls, page faults, scheduling"]
        row["threads"] += 1
    ordered = sorted(stages.items(), key=lambda kv: -kv[1]["pct"])
    return {
        k: {"pct": round(v["pct"], 1), "kernel_pct": round(v["kernel_pct"], 1), "threads": v["threads"]}
        for k, v in ordered
    }


def _threads(pid: int, last: dict[int, tuple[str, float]]) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        last[int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) / TICK)


def _rss_mib(pid: int) -> tuple[float, float]:
    """Resident memory and, of it, the process's own (anonymous: not pages of files it mapped)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "RssAnon")):
            fields[line.split(":")[0]] = int(line.split()[1]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("RssAnon", 0.0)


def _memory(samples: list[tuple[float, float, float]], wall: float) -> dict[str, Any]:
    """The room's resident size over the run (samples of seconds, resident and anonymous MiB)."""
    first = next((r for t, r, _ in samples if t > 8.0), 0.0)  # models loaded, the session under way
    # The session's own working memory grows over its first windows (the first utterance, the first
    # explanations): the steady size is the median of the run's second half.
    later = sorted(r for t, r, _ in samples if t > wall / 2)
    later_anon = sorted(a for t, _, a in samples if t > wall / 2)
    return {
        "rss_mib_started": round(first, 1),
        "rss_mib_steady": round(later[len(later) // 2], 1) if later else 0.0,
        "rss_mib_peak": round(max((r for _, r, _ in samples), default=0.0), 1),
        "anon_mib_steady": round(later_anon[len(later_anon) // 2], 1) if later_anon else 0.0,
        "rss_mib_every_5s": [round(r) for i, (_, r, _) in enumerate(samples) if i % 17 == 0],
    }


def _stage_timers(database: Path) -> dict[str, float]:
    """Mean milliseconds per stored window of every stage timer."""
    totals: Counter[str] = Counter()
    with sqlite3.connect(database) as db:
        rows = [json.loads(t) for (t,) in db.execute("SELECT timing FROM windows")]
    for timing in rows:
        totals.update({k: float(v) for k, v in timing.items()})
    return {k: round(v / len(rows), 1) for k, v in totals.most_common()} if rows else {}


def profile(use_perf: bool, video: str = "h264") -> dict[str, Any]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="clinic-profile-") as tmp:
        folder = Path(tmp)
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_broker(broker, port)
        edge = str(ROOT / ".venv" / "bin" / "clinic-edge")
        config = _config(folder, 0, port, Setup(staff=True, video=video))
        _enrol(folder, edge, [str(config)])
        cmd = [edge, "run", "--config", str(config), "--consent", "written", "--consent-by", "benchmark"]
        data = folder / "perf.data"
        if use_perf:
            cmd = ["perf", "record", "-q", "-F", "199", "-g", "-o", str(data), "--", *cmd]
        evict_page_cache(*ROOM_FILES)  # before the room starts: it maps them as after a boot
        started = time.monotonic()
        room = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threads: dict[int, tuple[str, float]] = {}
        rss: list[tuple[float, float, float]] = []  # seconds since the start, resident, of it anonymous
        try:
            target = None if use_perf else room.pid  # under perf, the room is perf's child
            while room.poll() is None:
                if target is None:
                    children = Path(f"/proc/{room.pid}/task/{room.pid}/children").read_text().split()
                    target = int(children[0]) if children else None
                if target is not None:
                    try:
                        _threads(target, threads)
                        rss.append((time.monotonic() - started, *_rss_mib(target)))
                    except OSError:
                        pass
                time.sleep(0.3)
            output = room.communicate()[0]
        finally:
            stop([room, broker])
        wall = time.monotonic() - started
        if room.returncode != 0:
            raise SystemExit(f"the room failed:\n{output}")
        loaded = re.search(r"(\d\d:\d\d:\d\d),\d+ INFO edge.runtime.app: session \S+ started", output)
        by_library = _perf_by_library(data) if use_perf else {}
        by_thread = _perf_by_thread(data) if use_perf else {}
        timers = _stage_timers(folder / "state0" / "clinic-edge.db")
    cpu_total = sum(v for _, v in threads.values())
    busiest = sorted(threads.items(), key=lambda kv: -kv[1][1])[:8]
    evict_page_cache(*ROOM_FILES)
    memory = json.loads(
        subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(ROOT / "build" / "models" / "pack")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
    )
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu_total, 1),
        "cpu_share": round(cpu_total / wall / (os.cpu_count() or 1), 3),
        "by_library_pct": by_library,
        "by_thread_pct": by_thread,
        "threads": [{"name": name, "cpu_s": round(cpu, 1)} for _, (name, cpu) in busiest],
        "stage_ms_per_window": timers,
        **_memory(rss, wall),
        "memory_steps_mib": memory["steps"],
        "memory_probe_total_mib": memory["total"],
        "session_started": bool(loaded),
        "room_report": [ln for ln in output.splitlines() if re.match(r"(frames|windows|words|latency|mqtt):", ln)],
    }


def markdown(results: dict[str, Any]) -> str:
    m, r = results["machine"], results["profile"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']} ({results['date']}); one room at the "
        "defaults (words, speaker attribution with one staff voice, voice cues, pulse) playing the demo scene x4 "
        "(56 s"
        + (", its picture as Motion JPEG, as a USB camera delivers it" if results.get("video") == "mjpeg" else "")
        + ") in real time.",
        "",
        f"CPU: {r['cpu_s']} s in {r['wall_s']} s, **{100 * r['cpu_share']:.0f} % of both cores**. "
        f"Resident memory: {r['rss_mib_started']} MiB once the session runs, {r.get('rss_mib_steady', '-')} MiB "
        f"over the run's second half (median), **{r['rss_mib_peak']} MiB** at its peak. Of the steady size, "
        f"{r.get('anon_mib_steady', '-')} MiB are the room's own memory; the rest are pages of the libraries and "
        "models it maps, read from disk as after a boot (the run first drops them from the page cache), which "
        "rooms in other processes share.",
        "",
    ]
    if r["by_library_pct"]:
        lines += ["| stage (native library) | share of the room's CPU |", "| --- | --- |"]
        lines += [f"| {k} | {v} % |" for k, v in r["by_library_pct"].items() if v >= 0.5]
        lines.append("")
    if r.get("by_thread_pct"):
        lines += [
            "By thread: each thread counted for the stage it works for, with its time in the kernel and the C "
            "library (a stage's threads waking each other, its page faults).",
            "",
            "| stage (its threads) | share of the room's CPU | of which in the kernel | threads |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {k} | {v['pct']} % | {v['kernel_pct']} % | {v['threads']} |"
            for k, v in r["by_thread_pct"].items()
            if v["pct"] >= 0.5
        ]
        lines.append("")
    lines += ["The room's own report of the run:", "", "```", *r["room_report"], "```", ""]
    lines += ["| busiest threads | CPU s |", "| --- | --- |"]
    lines += [f"| {t['name']} | {t['cpu_s']} |" for t in r["threads"]]
    lines += ["", "| stage timer (analysis thread) | ms per window |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in r["stage_ms_per_window"].items()]
    lines += ["", "| memory: loading step | MiB added |", "| --- | --- |"]
    lines += [f"| {name} | {mib} |" for name, mib in r["memory_steps_mib"]]
    lines.append(f"| all of them, in one process | {r['memory_probe_total_mib']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-perf", action="store_true", help="skip the per-library CPU split (perf)")
    parser.add_argument(
        "--video",
        choices=VIDEOS,
        default="h264",
        help="the recording's picture: H.264 (the demo, as an IP camera sends it) or Motion JPEG (a USB camera); "
        "mjpeg writes profile-mjpeg-<machine>",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed (scripts/setup.sh installs it)")
    use_perf = not args.no_perf and shutil.which("perf") is not None
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "video": args.video,
        "profile": profile(use_perf, args.video),
    }
    write_results(args.out, "profile" if args.video == "h264" else f"profile-{args.video}", results, markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
