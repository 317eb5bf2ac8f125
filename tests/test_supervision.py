"""Supervision: systemd notifications, the watchdog rule, and a live source lost and rebuilt."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.config import load_config
from edge.runtime import Appliance
from edge.runtime.notify import Liveness
from tests.conftest import CONSENT, CONSENT_ARGS, Broker, collect, stable_port, write_config

HERE = Path(__file__).resolve().parent


@pytest.mark.unit
@pytest.mark.parametrize(
    ("frame_age", "sink_age", "healthy"),
    [(0.1, 0.1, True), (9.9, 0.5, True), (10.5, 0.1, False), (0.1, 12.0, False), (11.0, 11.0, False)],
)
def test_watchdog_rule(frame_age: float, sink_age: float, healthy: bool) -> None:
    assert Liveness(frame_age, sink_age, stall_timeout_s=10.0).healthy is healthy


def test_systemd_notifications(tmp_path: Path, face_model: Path) -> None:
    """A real datagram socket stands in for systemd's; the CLI runs as it would under Type=notify."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    received: list[str] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                received.append(sock.recv(4096).decode())
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            *CONSENT_ARGS,
            "--config",
            str(cfg),
            "--source",
            "test:",
            "--duration",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    done.set()
    listener.join()
    sock.close()
    assert proc.returncode == 0, proc.stderr
    ready = [i for i, m in enumerate(received) if "READY=1" in m]
    pings = [i for i, m in enumerate(received) if m == "WATCHDOG=1"]
    stopping = [i for i, m in enumerate(received) if "STOPPING=1" in m]
    assert len(ready) == 1
    assert len(pings) >= 4  # every half second for about 4 s
    assert ready[0] < pings[0] and stopping and stopping[0] > pings[-1]
    assert any(m.startswith("STATUS=analysing test source") for m in received[ready[0]].split("\n"))


def _rtsp(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "rtsp_server.py"), str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        pytest.fail("RTSP test server did not start")
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_live_source_lost_and_rebuilt(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    port = stable_port()  # the server restarts on it
    server = _rtsp(port)
    status = collect(broker.host, broker.port, "clinic/v1/+/+/status")
    path = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    path.write_text(path.read_text().replace("[capture]\n", "[capture]\nstall_timeout_s = 2.0\n"))
    appliance = Appliance(load_config(path), f"rtsp://127.0.0.1:{port}/room")
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(report=appliance.run(consent=CONSENT, duration_s=22.0)))
    runner.start()
    try:
        time.sleep(7.0)
        _stop(server)  # the camera goes away
        time.sleep(5.0)
        lost_states = [s["degraded"] for s in status.json("status")]
        server = _rtsp(port)  # and comes back
        runner.join(timeout=90)
    finally:
        _stop(server)
        states = status.wait_for("status", 4)
        status.close()
    report = result["report"]
    assert report.source_restarts >= 1  # type: ignore[attr-defined]
    assert ["capture"] in lost_states
    assert states[-1]["state"] == "stopped"
    conn = sqlite3.connect(tmp_path / "s" / "clinic-edge.db")
    rows = conn.execute("SELECT idx, start_s FROM windows ORDER BY idx").fetchall()
    assert [r[0] for r in rows] == list(range(len(rows)))  # indices continue across the rebuild
    starts = [r[1] for r in rows]
    assert starts == sorted(starts)
    assert max(starts) > 12.0  # windows after the source came back, on the session's clock
    assert all(json.loads(f) is not None for (f,) in conn.execute("SELECT flags FROM windows"))
