"""Rooms per device: how many rooms this machine analyses at once in real time.

For N = 1, 2, ... rooms, N appliance processes (`clinic-edge run`, as the service runs them) each
play a long version of the demo clip at its own speed (`capture.realtime_files`, like a camera:
10 fps analysis with audio) and publish to one local mosquitto. A set-up is real time when no room
dropped a window or a frame and each analysed at least 95 % of the 10 fps it was asked for. Per N:
analysed fps per room, frames and windows dropped, window end -> MQTT receipt latency p50/p95/p99
(the window's end in wall time, from the summary's start time and span, to the moment the
subscriber has it), peak resident memory per room and of all rooms, and CPU use of all rooms.
With --one-process the N rooms run in one process (`clinic-edge run --config A --config B ...`),
which loads the models once and shares them between the rooms.

Every room runs the words channel as the room's defaults do (streaming transcription by faster-whisper;
a window is published once its words are); --words off, whisper.cpp or faster-whisper sets it.

Usage: .venv/bin/python benchmarks/rooms.py [--max-rooms 6] [--words default|off|whisper.cpp|faster-whisper]
                                            [--detect-every 3] [--mesh-every 3] [--engine-dir ENGINES] [--one-process]
                                            [--repeats 2] [--staff] [--min-rooms 4] [--minutes 10] [--nice 0]
                                            [--behind-every 1] [--words-threads 2] [--stagger 3.5]
With --minutes each room plays the demo scene repeated to that length (a long run: memory, shed
speech); --min-rooms skips the smaller room counts. With --staff a staff voice is enrolled in every
room, so speaker attribution embeds every voiced window (without one, attribution costs nothing).
Writes benchmarks/results/rooms[-nowords|-words|-words-fw][-detect3][-tensorrt][-one-process][-staff]
[-602s][-nice0][-behind1][-words2t][-stagger3.5s]-<machine>.json and .md (--nice, --behind-every and
--words-threads set the rooms' channels.words.nice, vision.behind_every and channels.words.threads).
Every room plays the same scene from its start, so by default the rooms speak, and transcribe, at
the same moments: the worst case for a device. --stagger S starts room k S x k seconds after the
first, as rooms whose sessions began apart (the scene is 14 s long: 3.5 s spreads four rooms evenly).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from results_io import evict_page_cache, interrupt_on_sigterm, machine, stop, write_results

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "build" / "models" / "pack"
ROOM_FILES = (ROOT / ".venv", ROOT / "build" / "models")  # the libraries and models a room maps
PACK_KEY = ROOT / "build" / "keys" / "pack-signing.key.pub"
GGML = ROOT / "build" / "models" / "whisper-tiny.en.ggml.bin"
SCENE_S = 14  # the demo scene's length
REPEAT = 4  # the 14 s demo scene four times: 56 s per room
TICK = os.sysconf("SC_CLK_TCK")
VIDEOS = ("h264", "mjpeg")  # how the recording's picture is encoded (--video)
P95_BOUND_MS = 300.0  # the latency a room's summary should arrive within (p95)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_broker(broker: subprocess.Popen[bytes], port: int) -> None:
    """Return once the broker accepts connections on ``port`` (rooms started before that would sit in
    their reconnect back-off, and their first summaries would look late)."""
    while broker.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"mosquitto exited ({broker.returncode}) before it listened on port {port}")


def _clip(repeat: int = REPEAT, video: str = "h264") -> Path:
    """The demo scene ``repeat`` times (built once, kept in build/bench/), its picture as H.264 (as the
    demo is made, and as an IP camera sends it) or as Motion JPEG (as a USB camera delivers it)."""
    clip = ROOT / "build" / "bench" / f"demo-{SCENE_S * repeat}s.mkv"
    if not clip.is_file():
        clip.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_demo.py"), "--out", str(clip), "--repeat", str(repeat)],
            check=True,
        )
    return clip if video == "h264" else _as_mjpeg(clip)


def _as_mjpeg(clip: Path) -> Path:
    """``clip`` with its picture re-encoded as Motion JPEG and its sound as PCM (built once)."""
    out = clip.with_name(f"{clip.stem}-mjpeg.mkv")
    if not out.is_file():
        part = out.with_suffix(".part")
        pipeline = (
            f"filesrc location={clip} ! matroskademux name=d "
            "d.video_0 ! queue ! decodebin ! videoconvert ! jpegenc quality=85 ! queue ! m. "
            "d.audio_0 ! queue ! decodebin ! audioconvert ! queue ! m. "
            f"matroskamux name=m ! filesink location={part}"
        )
        subprocess.run(["gst-launch-1.0", "-q", "-e", *pipeline.split()], check=True)
        part.replace(out)
    return out


def _config(folder: Path, room: int, port: int, setup: Setup) -> Path:
    channels = {
        "default": "",  # the product's defaults: on, faster-whisper with the packaged model
        "off": "[channels.words]\nenabled = false\n",
        "whisper.cpp": f'[channels.words]\nenabled = true\nbackend = "whisper.cpp"\nmodel = "{GGML}"\n',
        "faster-whisper": '[channels.words]\nenabled = true\nbackend = "faster-whisper"\n',
    }[setup.words]
    if setup.nice is not None:
        channels = (channels or "[channels.words]\n") + f"nice = {setup.nice}\n"
    if setup.words_threads is not None:
        channels = (channels or "[channels.words]\n") + f"threads = {setup.words_threads}\n"
    if setup.mesh_every != 1:
        channels += f"[channels.pulse]\nmesh_every = {setup.mesh_every}\n"
    backends = "[inference]\nbackends = ["
    if setup.engine_dir is not None:
        backends += f'{{backend = "tensorrt", engine_dir = "{setup.engine_dir}"}}, '
    backends += '{backend = "onnxruntime"}]\n'
    path = folder / f"room{room}.toml"
    path.write_text(
        f"""[room]
site = "bench"
room = "r{room}"
device_id = "bench-{room}"
[capture]
source = "{_clip(setup.repeat, setup.video).as_uri()}"
realtime_files = true
analysis_fps = 10
width = 640
[models]
pack = "{PACK}"
trusted_keys = ["{PACK_KEY}"]
[storage]
state_dir = "{folder / f"state{room}"}"
[mqtt]
host = "127.0.0.1"
port = {port}
[metrics]
enabled = false
[vision]
detect_every = {setup.detect_every}
{"" if setup.behind_every is None else f"behind_every = {setup.behind_every}"}
{backends}{channels}""",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Setup:
    """What every room of a run does."""

    words: str = "default"  # default (the room's defaults), off, whisper.cpp or faster-whisper
    detect_every: int = 1
    mesh_every: int = 1  # channels.pulse.mesh_every
    engine_dir: Path | None = None  # TensorRT engines (built from the pack) tried before ONNX Runtime
    one_process: bool = False  # all rooms in one `clinic-edge run --config ... --config ...`, sharing models
    staff: bool = False  # a staff voice enrolled in every room, so speaker attribution runs on every voiced window
    repeat: int = REPEAT  # the demo scene this many times per room
    nice: int | None = None  # channels.words.nice of every room (None: the default)
    behind_every: int | None = None  # vision.behind_every of every room (None: the default)
    words_threads: int | None = None  # channels.words.threads of every room (None: the default)
    stagger_s: float = 0.0  # room k starts k x this after the first, so the rooms' speech comes apart
    video: str = "h264"  # the recording's picture: h264 (the demo, an IP camera) or mjpeg (a USB camera)

    def name(self) -> str:
        parts = ["rooms"]
        if self.words != "default":
            parts.append({"off": "nowords", "whisper.cpp": "words", "faster-whisper": "words-fw"}[self.words])
        if self.detect_every != 1:
            parts.append(f"detect{self.detect_every}")
        if self.mesh_every != 1:
            parts.append(f"mesh{self.mesh_every}")
        if self.engine_dir is not None:
            parts.append("tensorrt")
        if self.one_process:
            parts.append("one-process")
        if self.staff:
            parts.append("staff")
        if self.repeat != REPEAT:
            parts.append(f"{SCENE_S * self.repeat}s")
        if self.nice is not None:
            parts.append(f"nice{self.nice}")
        if self.behind_every is not None:
            parts.append(f"behind{self.behind_every}")
        if self.words_threads is not None:
            parts.append(f"words{self.words_threads}t")
        if self.stagger_s:
            parts.append(f"stagger{self.stagger_s:g}s")
        if self.video != "h264":
            parts.append(self.video)
        return "-".join(parts)

    def describe(self) -> str:
        text = " with audio"
        text += {
            "default": " and transcript (the defaults: streaming faster-whisper)",
            "off": ", no transcript",
            "whisper.cpp": " and transcript (whisper.cpp)",
            "faster-whisper": " and transcript (faster-whisper)",
        }[self.words]
        text += f", face detection every {self.detect_every} frames" if self.detect_every != 1 else ""
        text += f", face mesh every {self.mesh_every} frames" if self.mesh_every != 1 else ""
        text += ", TensorRT engines" if self.engine_dir is not None else ""
        text += "; all rooms in one process sharing the model engines" if self.one_process else ""
        text += "; a staff voice enrolled in every room (speaker attribution on)" if self.staff else ""
        text += f"; transcription at nice {self.nice}" if self.nice is not None else ""
        text += f"; vision.behind_every = {self.behind_every}" if self.behind_every is not None else ""
        text += f"; transcription on {self.words_threads} threads" if self.words_threads is not None else ""
        if self.stagger_s:
            text += (
                f"; room k starts {self.stagger_s:g} s x k after the first, so the rooms speak at different "
                "moments (CPU use over the whole run, the starts included)"
            )
        return text


def _speechless(summary: dict[str, Any]) -> bool:
    """A published window without the client's speech (silence, no audio, or staff's voice only)."""
    quality = summary.get("quality") or {}
    if quality.get("silence") or quality.get("no_audio"):
        return True
    voice = (summary.get("modalities") or {}).get("voice") or {}
    return (voice.get("staff_share") or 0.0) + (voice.get("unknown_share") or 0.0) >= 0.999


class Subscriber:
    """Receives every summary and notes when it arrived."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.latencies: dict[str, list[float]] = {}
        self.quiet: list[float] = []  # windows without good words (including those whose speech was shed)
        # windows without the client's speech: silent, or every voiced moment staff's or nobody's
        # (edge.analysis.summarize's rule); unlike the above, never windows that waited for words
        self.speechless: list[float] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("clinic/v1/+/+/summary", qos=1)
        self.client.loop_start()

    def _message(self, _c: Any, _u: Any, msg: Any) -> None:
        now = time.time()
        body = json.loads(msg.payload)
        end = datetime.fromisoformat(body["span"]["started_at"]).timestamp()
        end += body["span"]["end_s"] - body["span"]["start_s"]
        words = (body.get("modalities") or {}).get("words") or {}
        with self.lock:
            self.latencies.setdefault(body["room"], []).append((now - end) * 1e3)
            if words.get("quality") != "good":
                self.quiet.append((now - end) * 1e3)
            if _speechless(body):
                self.speechless.append((now - end) * 1e3)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds used, resident KiB) of a running process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        rss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS")
        )
    except (OSError, StopIteration, IndexError, ValueError):
        return 0.0, 0
    return cpu, rss


LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")  # Debian's pocketsphinx-testdata


def _staff_speech(folder: Path) -> Path:
    """A recording of a staff member: a man reading (LibriVox, public domain, 25 s in five files of
    Debian's pocketsphinx-testdata, which scripts/setup.sh installs). A voice from espeak-ng, which
    also speaks the demo clip, is too close to the clip's voice for attribution to tell them apart:
    the clip's speech would be taken for staff's and never transcribed."""
    parts = sorted(LIBRIVOX.glob("*.wav"))
    if not parts:
        raise SystemExit(f"{LIBRIVOX} is missing: install pocketsphinx-testdata (scripts/setup.sh does)")
    speech = folder / "staff.wav"
    with wave.open(str(speech), "wb") as out:
        for i, part in enumerate(parts):
            with wave.open(str(part), "rb") as src:
                if i == 0:
                    out.setparams(src.getparams())
                out.writeframes(src.readframes(src.getnframes()))
    return speech


def _enrol(folder: Path, edge: str, configs: list[str]) -> None:
    """A staff voice (a recorded man's, not the clip's) enrolled in every room."""
    speech = _staff_speech(folder)
    for config in configs:
        enrol = ["staff-voice", "enroll", "--config", config, "--staff-id", "bench", "--consent", "benchmark"]
        subprocess.run([edge, *enrol, "--audio", str(speech)], check=True, stdout=subprocess.DEVNULL)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")


def _start(cmds: list[list[str]], stagger_s: float) -> list[subprocess.Popen[str]]:
    """Start the rooms, ``stagger_s`` apart (the scene's speech at another moment in each room)."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for i, cmd in enumerate(cmds):
            if i and stagger_s:
                time.sleep(stagger_s)
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    except BaseException:
        stop(procs)  # interrupted between two starts: the rooms started close their sessions and exit
        raise
    return procs


def run_rooms(n: int, broker_port: int, setup: Setup) -> dict[str, Any]:
    sub = Subscriber(broker_port)
    with tempfile.TemporaryDirectory(prefix="clinic-rooms-") as tmp:
        folder = Path(tmp)
        configs = [str(_config(folder, room, broker_port, setup)) for room in range(n)]
        consent = ["--consent", "written", "--consent-by", "benchmark"]
        edge = str(ROOT / ".venv" / "bin" / "clinic-edge")
        if setup.staff:
            _enrol(folder, edge, configs)
        if setup.one_process:
            cmds = [[edge, "run", *[a for c in configs for a in ("--config", c)], *consent]]
        else:
            cmds = [[edge, "run", "--config", c, *consent] for c in configs]
        evict_page_cache(*ROOM_FILES)  # the rooms map them as after a boot
        started = time.monotonic()
        procs = _start(cmds, setup.stagger_s)
        peak_rss = [0] * len(procs)
        cpu = [0.0] * len(procs)
        try:
            while any(p.poll() is None for p in procs):
                for i, p in enumerate(procs):
                    if p.poll() is None:
                        used, rss = _proc_stats(p.pid)
                        cpu[i] = max(cpu[i], used)
                        peak_rss[i] = max(peak_rss[i], rss)
                time.sleep(0.5)
        except BaseException:
            stop(procs)  # interrupted: the rooms close their sessions and exit, none is left behind
            raise
        wall = time.monotonic() - started
        outputs = [p.communicate()[0] for p in procs]
    time.sleep(1.0)
    sub.close()
    rooms = []
    skipped_per_output = []
    declined_per_output: list[int] = []
    for out in outputs:
        frames = list(re.finditer(r"frames:\s+(\d+) analysed \(([\d.]+) fps\), (\d+) dropped", out))
        windows = list(re.finditer(r"windows:\s+(\d+) stored, (\d+) dropped", out))
        shed = [int(x) for x in re.findall(r"words:\s+(\d+) stretches of speech left untranscribed", out)]
        skipped_per_output.append(sum(shed))
        declined_per_output.append(sum(int(x) for x in re.findall(r"(\d+) quick passes declined", out)))
        if not frames or len(frames) != len(windows):
            raise SystemExit(f"a room did not finish cleanly:\n{out}")
        for f, w in zip(frames, windows, strict=True):
            rooms.append(
                {
                    "fps": float(f.group(2)),
                    "frames_dropped": int(f.group(3)),
                    "windows": int(w.group(1)),
                    "windows_dropped": int(w.group(2)),
                }
            )
    if len(rooms) != n:
        raise SystemExit(f"{len(rooms)} of {n} rooms reported:\n{outputs}")
    latencies = [v for values in sub.latencies.values() for v in values]
    skipped = sum(skipped_per_output)
    realtime = all(r["windows_dropped"] == 0 and r["frames_dropped"] == 0 and r["fps"] >= 9.5 for r in rooms)
    return {
        "rooms": n,
        "realtime": realtime,
        "fps_min": min(r["fps"] for r in rooms),
        "frames_dropped": sum(r["frames_dropped"] for r in rooms),
        "windows_dropped": sum(r["windows_dropped"] for r in rooms),
        "summaries": len(latencies),
        "latency_p50_ms": _pct(latencies, 0.50),
        "latency_p95_ms": _pct(latencies, 0.95),
        "latency_p99_ms": _pct(latencies, 0.99),
        "latency_p95_quiet_ms": _pct(sub.quiet, 0.95),
        "latency_p95_speechless_ms": _pct(sub.speechless, 0.95),
        "speechless_windows": len(sub.speechless),
        "utterances_skipped": skipped,
        "quick_declined": sum(declined_per_output),
        # Per room: the largest room process, or the one process's share when the rooms share it.
        "peak_rss_mib_per_room": round(max(peak_rss) / 1024 / (n if setup.one_process else 1), 1),
        "peak_rss_mib_total": round(sum(peak_rss) / 1024, 1),
        "cpu_share": round(sum(cpu) / wall / (os.cpu_count() or 1), 3),
        "per_room": rooms,
    }


def combine(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs of the same room count: real time only if every run was, the worst
    fps and drops, the median of each latency percentile with the runs' range of p95, the largest
    memory, the median CPU use."""
    if len(repeats) == 1:
        return repeats[0]
    p95s = [r["latency_p95_ms"] for r in repeats]
    return {
        "rooms": repeats[0]["rooms"],
        "realtime": all(r["realtime"] for r in repeats),
        "fps_min": min(r["fps_min"] for r in repeats),
        "frames_dropped": max(r["frames_dropped"] for r in repeats),
        "windows_dropped": max(r["windows_dropped"] for r in repeats),
        "summaries": sum(r["summaries"] for r in repeats),
        "latency_p50_ms": round(statistics.median(r["latency_p50_ms"] for r in repeats), 1),
        "latency_p95_quiet_ms": round(statistics.median(r.get("latency_p95_quiet_ms", 0.0) for r in repeats), 1),
        "latency_p95_speechless_ms": round(
            statistics.median(r.get("latency_p95_speechless_ms", 0.0) for r in repeats), 1
        ),
        "speechless_windows": sum(r.get("speechless_windows", 0) for r in repeats),
        "utterances_skipped": max(r.get("utterances_skipped", 0) for r in repeats),
        "quick_declined": max(r.get("quick_declined", 0) for r in repeats),
        "latency_p95_ms": round(statistics.median(p95s), 1),
        "latency_p95_range_ms": [min(p95s), max(p95s)],
        "latency_p99_ms": round(statistics.median(r["latency_p99_ms"] for r in repeats), 1),
        "peak_rss_mib_per_room": max(r["peak_rss_mib_per_room"] for r in repeats),
        "peak_rss_mib_total": max(r["peak_rss_mib_total"] for r in repeats),
        "cpu_share": round(statistics.median(r["cpu_share"] for r in repeats), 3),
        "repeats": repeats,
    }


def within(runs: list[dict[str, Any]], p95_ms: float = P95_BOUND_MS) -> int:
    """Rooms that ran in real time with window end -> MQTT p95 under ``p95_ms``, counting up from one
    room to the first set-up that missed either."""
    count = 0
    for run in sorted(runs, key=lambda r: r["rooms"]):
        if not (run["realtime"] and run["latency_p95_ms"] < p95_ms):
            break
        count = run["rooms"]
    return count


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']} ({results['date']}); each room plays "
        f"{results['clip']} in real time at 10 fps analysis{results['setup']}."
        + (
            f" {results['repeats']} runs per room count: median latencies (p95 range of the runs), the worst "
            "fps and drops, the largest memory."
            if results.get("repeats", 1) > 1
            else ""
        ),
        "",
        "| rooms | real time | slowest room fps | frames / windows dropped | window end -> MQTT p50 / p95 / p99 ms "
        "| p95 of windows without words / without client speech (n) ms | speech shed / quick passes declined "
        "| peak RSS per room / all rooms "
        "| CPU use (all cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["runs"]:
        spread = r.get("latency_p95_range_ms")
        p95 = f"{r['latency_p95_ms']}" + (f" ({spread[0]}-{spread[1]})" if spread else "")
        lines.append(
            f"| {r['rooms']} | {'yes' if r['realtime'] else 'no'} | {r['fps_min']} | {r['frames_dropped']} / "
            f"{r['windows_dropped']} | {r['latency_p50_ms']} / {p95} / {r['latency_p99_ms']} | "
            f"{r.get('latency_p95_quiet_ms', '-')} / {r.get('latency_p95_speechless_ms', '-')} "
            f"({r.get('speechless_windows', '-')}) | {r.get('utterances_skipped', '-')} / "
            f"{r.get('quick_declined', '-')} | "
            f"{r['peak_rss_mib_per_room']} / {r.get('peak_rss_mib_total', '-')} MiB | {100 * r['cpu_share']:.0f} % |"
        )
    at_least = "at least " if results.get("limited") else ""
    lines += [
        "",
        f"Rooms per device (real time): **{at_least}{results['rooms_per_device']}**; with window end -> MQTT "
        f"p95 under {P95_BOUND_MS:.0f} ms as well: **{within(results['runs'])}**.",
    ]
    if results.get("limited"):
        lines.append(f"(every set-up up to --max-rooms {results['max_rooms']} was real time; more were not tried)")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, Setup]:
    """The command line and the set-up it asks for (the suite's steps are checked against it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-rooms", type=int, default=6)
    parser.add_argument(
        "--words",
        choices=("default", "off", "whisper.cpp", "faster-whisper"),
        default="default",
        help="the words channel: the room's defaults (on), off, or on with this engine",
    )
    parser.add_argument("--detect-every", type=int, default=1, help="vision.detect_every of every room")
    parser.add_argument("--mesh-every", type=int, default=1, help="channels.pulse.mesh_every of every room")
    parser.add_argument("--engine-dir", type=Path, default=None, help="TensorRT engines built from the pack")
    parser.add_argument("--repeats", type=int, default=1, help="runs per room count (median and p95 range)")
    parser.add_argument(
        "--one-process", action="store_true", help="all rooms in one clinic-edge process, sharing the models"
    )
    parser.add_argument("--staff", action="store_true", help="enrol a staff voice in every room (attribution on)")
    parser.add_argument("--min-rooms", type=int, default=1, help="the first room count tried")
    parser.add_argument(
        "--minutes", type=float, default=None, help=f"each room plays this long (default {SCENE_S * REPEAT} s)"
    )
    parser.add_argument("--nice", type=int, default=None, help="channels.words.nice of every room")
    parser.add_argument("--behind-every", type=int, default=None, help="vision.behind_every of every room")
    parser.add_argument("--words-threads", type=int, default=None, help="channels.words.threads of every room")
    parser.add_argument(
        "--stagger", type=float, default=0.0, help="seconds between one room's start and the next's (processes only)"
    )
    parser.add_argument(
        "--video",
        choices=VIDEOS,
        default="h264",
        help="the recording's picture: H.264 (the demo, as an IP camera sends it) or Motion JPEG (a USB camera)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.stagger and args.one_process:
        parser.error("--stagger starts room processes apart; --one-process has one")
    repeat = REPEAT if args.minutes is None else max(1, math.ceil(args.minutes * 60 / SCENE_S))
    setup = Setup(
        args.words,
        args.detect_every,
        args.mesh_every,
        args.engine_dir,
        args.one_process,
        args.staff,
        repeat,
        args.nice,
        args.behind_every,
        args.words_threads,
        args.stagger,
        args.video,
    )
    return args, setup


def main() -> int:
    interrupt_on_sigterm()
    args, setup = parse()
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed (scripts/setup.sh installs it)")
    repeat = setup.repeat
    _clip(repeat, setup.video)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_broker(broker, port)
        runs = []
        try:
            for n in range(args.min_rooms, args.max_rooms + 1):
                result = combine([run_rooms(n, port, setup) for _ in range(args.repeats)])
                runs.append(result)
                print(
                    f"{n} room(s): real time {result['realtime']}, slowest {result['fps_min']} fps, "
                    f"p95 {result['latency_p95_ms']} ms",
                    flush=True,
                )
                if not result["realtime"]:
                    break
        finally:
            stop([broker])
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "clip": f"the demo scene x{repeat} ({SCENE_S * repeat} s, 640x480"
        + (", Motion JPEG)" if setup.video == "mjpeg" else ")"),
        "words": setup.words,
        "detect_every": setup.detect_every,
        "mesh_every": setup.mesh_every,
        "engine_dir": None if setup.engine_dir is None else str(setup.engine_dir),
        "one_process": setup.one_process,
        "repeats": args.repeats,
        "setup": setup.describe(),
        "runs": runs,
        "rooms_per_device": max((r["rooms"] for r in runs if r["realtime"]), default=0),
        "max_rooms": args.max_rooms,
        "limited": bool(runs) and all(r["realtime"] for r in runs),  # stopped at --max-rooms, not saturated
    }
    write_results(args.out, setup.name(), results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
