"""Raw video and audio never leave the process: not to disk, not to MQTT."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contract.payload import Status, Summary
from edge.capture import GstCapture, parse_source
from tests.conftest import CONSENT_ARGS, Broker, collect, write_config

ROOT = Path(__file__).resolve().parents[1]
MAX_PAYLOAD_BYTES = 2048


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_a_session_writes_only_the_database_and_publishes_only_summaries(
    tmp_path: Path, face_model: Path, demo_clip: Path, broker: Broker
) -> None:
    work, tmp, home, cache, state = (tmp_path / n for n in ("cwd", "tmp", "home", "cache", "state"))
    for d in (work, tmp, home, cache):
        d.mkdir()
    everything = collect(broker.host, broker.port, "#")  # every topic on the broker
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=state, mqtt_port=broker.port)
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(home), "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "run", *CONSENT_ARGS, "--config", str(cfg), "--source", demo_clip.as_uri()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    messages = everything.wait_for("summary", 13)
    everything.close()

    # Disk: nothing in the working, temporary or home folders; only SQLite files in the state folder;
    # in the cache folder only GStreamer's plugin registry, which holds nothing of the session.
    assert _files(work) == [] and _files(tmp) == [] and _files(home) == []
    assert {str(p.relative_to(cache).parent) for p in _files(cache)} <= {"gstreamer-1.0"}
    assert all(re.fullmatch(r"registry\.\w+\.bin", p.name) for p in _files(cache))
    # ... and the empty lock file by which a session takes the devices from the setup page's preview.
    assert {p.name for p in _files(state)} <= {
        "clinic-edge.db",
        "clinic-edge.db-wal",
        "clinic-edge.db-shm",
        "capture.lock",
    }
    assert (state / "capture.lock").stat().st_size == 0

    # Database: no binary values and no long strings in any column of any table.
    conn = sqlite3.connect(state / "clinic-edge.db")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        for column in columns:
            kinds = {r[0] for r in conn.execute(f'SELECT DISTINCT typeof("{column}") FROM "{table}"')}
            assert "blob" not in kinds, f"{table}.{column} holds binary data"
            longest = conn.execute(f'SELECT MAX(LENGTH("{column}")) FROM "{table}"').fetchone()[0] or 0
            assert longest < MAX_PAYLOAD_BYTES, f"{table}.{column} holds {longest} characters"

    # MQTT: only this room's summary and status topics, small JSON objects without lists.
    assert len(messages) == 13
    with everything.lock:
        raw = list(everything.messages)
    for topic, payload, _ in raw:
        assert re.fullmatch(r"clinic/v1/test-site/room-a/(summary|status)", topic), topic
        assert len(payload) < MAX_PAYLOAD_BYTES
        if topic.endswith("/summary"):
            assert b"[" not in payload, "summaries carry no arrays"
            Summary.model_validate_json(payload)
        else:
            Status.model_validate_json(payload)  # its one list names degraded parts from a fixed set


FORBIDDEN = [
    r"cv2\.imwrite",
    r"cv2\.VideoWriter",
    r"\bnp\.save",
    r"\.tofile\(",
    r"wave\.open\(.*[\"']wb?[\"']",  # writing a WAV (reading an enrolment recording is allowed)
    r"soundfile",
    r"filesink",
    r"multifilesink",
    r"splitmuxsink",
    r"Image\.fromarray",
    r"(?<!accounts)\.save\(",  # an image's or array's save (a staff account's save is not media)
]


@pytest.mark.unit
def test_runtime_source_has_no_media_writers() -> None:
    """A guard against a future change that adds a code path writing media from the runtime."""
    offenders = []
    for path in (ROOT / "edge").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {pat}" for pat in FORBIDDEN if re.search(pat, text)]
    assert offenders == []


@pytest.mark.parametrize("source", ["test:", "demo"])
def test_capture_graph_has_no_sink_but_appsinks(source: str, demo_clip: Path) -> None:
    uri = demo_clip.as_uri() if source == "demo" else source
    with GstCapture(parse_source(uri), width=320, fps=10) as cap:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (cap.has_video and cap.has_audio and cap.video.qsize()):
            time.sleep(0.05)
        sinks = cap.sink_factories()
    assert sinks == ["appsink", "appsink"]


STRACE = shutil.which("strace")


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
def test_what_the_process_opens_for_writing_and_connects_to(
    tmp_path: Path, face_model: Path, demo_clip: Path, broker: Broker
) -> None:
    """Watch the real process with strace: every file opened for writing and every connection."""
    state, cache, home, tmp = (tmp_path / n for n in ("state", "cache", "home", "tmp"))
    for d in (cache, home, tmp):
        d.mkdir()
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=state, mqtt_port=broker.port)
    trace = tmp_path / "trace.txt"
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(home), "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.run(
        [
            STRACE,
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,creat,connect",
            "-o",
            str(trace),
            sys.executable,
            "-m",
            "edge",
            "run",
            *CONSENT_ARGS,
            "--config",
            str(cfg),
            "--source",
            demo_clip.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    writes, connects = set(), set()
    for line in trace.read_text().splitlines():
        if "= -1 ENOENT" in line:
            continue
        if re.search(r"\b(open|openat|creat)\(", line) and re.search(r"O_WRONLY|O_RDWR|O_CREAT|creat\(", line):
            writes.add(line.split('"')[1])
        elif "connect(" in line:
            connects.add(re.sub(r"^\d+\s+connect\(\d+, ", "", line).split("}")[0])
    allowed = [
        rf"{re.escape(str(state))}/clinic-edge\.db(-wal|-shm|-journal)?",
        rf"{re.escape(str(state))}/capture\.(lock|wanted)",  # empty: a session takes the devices (claim.py)
        r"/dev/null",
        rf"{re.escape(str(cache))}/gstreamer-1\.0/[^/]+",  # the plugin registry
        # GStreamer's ORC compiles SIMD kernels for colour conversion into a file it maps executable
        rf"{re.escape(str(home))}/orcexec\.\w+",
    ]
    unexpected = sorted(w for w in writes if not any(re.fullmatch(p, w) for p in allowed))
    assert unexpected == []
    assert any(w.endswith("clinic-edge.db") for w in writes)
    # Network: the broker, and otherwise only loopback (paho wakes its own network thread through a
    # socket pair on 127.0.0.1); no address off this machine.
    inet = {c for c in connects if "AF_INET" in c}
    assert f'{{sa_family=AF_INET, sin_port=htons({broker.port}), sin_addr=inet_addr("127.0.0.1")' in inet
    assert all('sin_addr=inet_addr("127.0.0.1")' in c for c in inet), inet
    assert all("AF_INET" in c or "nscd" in c for c in connects), connects
