"""Several rooms in one process: shared engines, rooms kept apart, one service for systemd."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.config.models import OnnxRuntimeBackendConfig
from edge.control.local import SOCKET_NAME, send
from edge.errors import ConfigError
from edge.inference.manifest import load_manifest
from edge.inference.onnxruntime_backend import OnnxRuntimeEngine
from edge.inference.shared import SharedEngines
from edge.runtime.device import Device, DeviceNotifier, check_rooms
from edge.runtime.notify import Notifier
from tests.conftest import CONSENT_ARGS, WHISPER_GGML, Broker, collect, write_config


def _room(
    tmp_path: Path, name: str, face_model: Path, *, port: int | None = None, extra: str = "", **kw: object
) -> Path:
    path = write_config(
        tmp_path / f"{name}.toml", face_model=face_model, state_dir=tmp_path / name, mqtt_port=port, extra=extra, **kw
    )
    path.write_text(path.read_text().replace('room = "room-a"', f'room = "{name}"'))
    return path


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("second", "error"),
    [
        ({"name": "room-b"}, None),
        ({"name": "room-a", "state": "other"}, "same site/room (test-site/room-a)"),
        ({"name": "room-b", "state": "room-a"}, "same storage.state_dir"),
        ({"name": "room-b", "metrics": "[metrics]\nport = 9300\n"}, "same metrics endpoint (127.0.0.1:9300)"),
        ({"name": "room-b", "metrics": "[metrics]\nport = 9301\n"}, None),
        ({"name": "room-b", "metrics": "[metrics]\nenabled = false\nport = 9300\n"}, None),
    ],
)
def test_rooms_of_a_device_own_their_state(
    tmp_path: Path, face_model: Path, second: dict[str, str], error: str | None
) -> None:
    first = write_config(tmp_path / "a.toml", face_model=face_model, state_dir=tmp_path / "room-a", mqtt_port=None)
    first.write_text(first.read_text().replace("[metrics]\nport = 0\n", "[metrics]\nport = 9300\n"))
    other = write_config(
        tmp_path / "b.toml",
        face_model=face_model,
        state_dir=tmp_path / second.get("state", second["name"]),
        mqtt_port=None,
    )
    text = other.read_text().replace('room = "room-a"', f'room = "{second["name"]}"')
    if "metrics" in second:
        text = text.replace("[metrics]\nport = 0\n", second["metrics"])
    other.write_text(text)
    configs = [load_config(first), load_config(other)]
    if error is None:
        check_rooms(configs)
    else:
        with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
            check_rooms(configs)


@pytest.mark.unit
def test_a_device_needs_rooms() -> None:
    with pytest.raises(ConfigError, match="at least one room"):
        check_rooms([])


@pytest.mark.unit
@pytest.mark.parametrize(("arena", "kept"), [({}, False), ({"memory_arena": True}, True)])
def test_onnx_runtime_keeps_a_memory_arena_only_when_asked(
    face_model: Path, arena: dict[str, bool], kept: bool
) -> None:
    """Off by default: an arena grows to a model's largest activations and never shrinks; without it a
    run's buffers go back to the C library."""
    manifest = load_manifest(face_model)
    engine = OnnxRuntimeEngine(face_model, manifest, OnnxRuntimeBackendConfig(**arena))
    assert engine._session.get_session_options().enable_cpu_mem_arena is kept
    batch = np.zeros((2, *manifest.input.shape[1:]), dtype=np.float32)
    assert engine.infer(batch).shape[0] == 2


# -- shared engines -----------------------------------------------------------------------------


@pytest.mark.unit
def test_engines_are_loaded_once_and_closed_after_the_last_user(face_model: Path) -> None:
    manifest = load_manifest(face_model)
    chain = [OnnxRuntimeBackendConfig()]
    engines = SharedEngines()
    a = engines.engine(face_model, manifest, chain)
    b = engines.engine(face_model, manifest, chain)
    other = engines.engine(face_model, manifest, [OnnxRuntimeBackendConfig(intra_op_threads=2)])
    assert engines.loads == 2 and len(engines) == 2  # a different backend set-up is its own engine
    batch = np.random.default_rng(0).random((2, *manifest.input.shape[1:]), dtype=np.float32)
    expected = a.infer(batch)
    a.close()
    a.close()  # a second close does not release someone else's use
    np.testing.assert_allclose(b.infer(batch), expected, rtol=1e-5)  # still loaded for b
    b.close()
    other.close()
    assert len(engines) == 0


@pytest.mark.unit
def test_a_shared_engine_serves_threads_at_once(face_model: Path) -> None:
    manifest = load_manifest(face_model)
    engines = SharedEngines()
    handles = [engines.engine(face_model, manifest, [OnnxRuntimeBackendConfig()]) for _ in range(4)]
    rng = np.random.default_rng(1)
    batches = [rng.random((1, *manifest.input.shape[1:]), dtype=np.float32) for _ in handles]
    expected = [h.infer(x) for h, x in zip(handles, batches, strict=True)]
    results: list[list[np.ndarray]] = [[] for _ in handles]

    def work(i: int) -> None:
        for _ in range(50):
            results[i].append(handles[i].infer(batches[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outs in enumerate(results):
        assert len(outs) == 50
        for out in outs:
            np.testing.assert_allclose(out, expected[i], rtol=1e-5)
    for h in handles:
        h.close()


def test_rooms_of_a_device_share_the_packs_models(tmp_path: Path, face_model: Path, default_pack: Path) -> None:
    words = f'[channels.words]\nenabled = true\nmodel = "{WHISPER_GGML}"\n'  # the pack's text model too
    one = Device([load_config(_room(tmp_path, "room-a", face_model, pack=default_pack, extra=words))])
    loaded_by_one_room = one.engines.loads
    for room in one.rooms:
        room.close()
    rooms = [
        load_config(_room(tmp_path, name, face_model, pack=default_pack, extra=words)) for name in ("room-b", "room-c")
    ]
    two = Device(rooms)
    try:
        assert loaded_by_one_room == 3  # the pack's face, text and speaker models
        assert two.engines.loads == loaded_by_one_room
    finally:
        for room in two.rooms:
            room.close()
    assert len(two.engines) == 0


# -- systemd ------------------------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[Notifier, socket.socket]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    notifier = Notifier(str(path), watchdog_usec=4_000_000)  # a 4 s watchdog period
    yield notifier, sock
    notifier.close()
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


@pytest.mark.unit
@pytest.mark.parametrize(
    ("a_healthy_ago", "b_healthy_ago", "pings"),
    [(0.0, 0.0, True), (0.0, 3.9, True), (0.0, 4.1, False), (5.0, 0.0, False)],
)
def test_watchdog_is_fed_only_while_every_room_is_healthy(
    notify_socket: tuple[Notifier, socket.socket], a_healthy_ago: float, b_healthy_ago: float, pings: bool
) -> None:
    notifier, sock = notify_socket
    device = DeviceNotifier(notifier, ["s/a", "s/b"])
    assert device.max_silence_s == 4.0  # one watchdog period: twice the ping interval
    now = time.monotonic() + 10.0
    device.watchdog("s/a", healthy=True, now=now - a_healthy_ago)
    device.watchdog("s/b", healthy=True, now=now - b_healthy_ago)
    _received(sock)
    notifier._last_ping = 0.0  # the ping rate limit is not what this case is about
    assert device.watchdog("s/a", healthy=False, now=now) is pings
    assert ("WATCHDOG=1" in _received(sock)) is pings


@pytest.mark.unit
def test_ready_once_every_room_is_up(notify_socket: tuple[Notifier, socket.socket]) -> None:
    notifier, sock = notify_socket
    device = DeviceNotifier(notifier, ["s/a", "s/b"])
    device.room("s/a").ready("standby")
    first = _received(sock)
    assert first and not any("READY=1" in m for m in first)
    device.room("s/b").ready("standby")
    second = _received(sock)
    assert any("READY=1" in m and "STATUS=s/a: standby; s/b: standby" in m for m in second)
    device.room("s/a").ready("analysing test source")  # a session starting later is only a status
    third = _received(sock)
    assert third and not any("READY=1" in m for m in third)
    device.room("s/b").stopping()  # one room's stop is not the service's
    assert not any("STOPPING=1" in m for m in _received(sock))


# -- the device running -------------------------------------------------------------------------


def _windows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM windows").fetchone()[0])


def test_two_rooms_in_one_process_record_and_publish_apart(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    summaries = collect(broker.host, broker.port, "clinic/v1/+/+/summary")
    configs = [_room(tmp_path, name, face_model, port=broker.port) for name in ("room-a", "room-b")]
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "run", *CONSENT_ARGS, "--duration", "6"]
        + [a for c in configs for a in ("--config", str(c))],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("session:") == 2
    assert "room:      test-site/room-a" in proc.stdout and "room:      test-site/room-b" in proc.stdout
    assert "2 rooms (test-site/room-a, test-site/room-b) share 1 model engines" in proc.stderr
    counts = {name: _windows(tmp_path / name / "clinic-edge.db") for name in ("room-a", "room-b")}
    assert all(n >= 2 for n in counts.values()), counts
    received = summaries.json("summary")
    summaries.close()
    by_room = {name: sum(1 for s in received if s["room"] == name) for name in ("room-a", "room-b")}
    assert by_room == counts  # each room's summaries on its own topic, every stored window published


@pytest.mark.parametrize(
    ("clip", "sessions_in_good_room"),
    [
        ("missing", 0),  # found when the device is built: no room starts
        ("corrupt", 1),  # found when its pipeline starts: the other room's session is closed properly
    ],
)
def test_one_failing_room_stops_the_device_with_its_error(
    tmp_path: Path, face_model: Path, clip: str, sessions_in_good_room: int
) -> None:
    good = _room(tmp_path, "room-a", face_model)
    bad = _room(tmp_path, "room-b", face_model)
    media = tmp_path / f"{clip}.mkv"
    if clip == "corrupt":
        media.write_bytes(b"not a matroska file" * 100)
    bad.write_text(bad.read_text().replace('source = "test:"', f'source = "{media.as_uri()}"'))
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "run", *CONSENT_ARGS, "--config", str(good), "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 3, proc.stderr  # a source error, as for one room alone
    assert f"{clip}.mkv" in proc.stderr.splitlines()[-1]
    db = tmp_path / "room-a" / "clinic-edge.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT ended_at FROM sessions").fetchall()
    assert len(rows) == sessions_in_good_room
    assert all(ended is not None for (ended,) in rows)


def test_source_override_is_for_one_room(tmp_path: Path, face_model: Path) -> None:
    configs = [_room(tmp_path, name, face_model) for name in ("room-a", "room-b")]
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "run", *CONSENT_ARGS, "--source", "test:", "--duration", "1"]
        + [a for c in configs for a in ("--config", str(c))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--source overrides one room's source" in proc.stderr


def test_served_rooms_take_their_own_commands(tmp_path: Path, face_model: Path) -> None:
    configs = [load_config(_room(tmp_path, name, face_model)) for name in ("room-a", "room-b")]
    device = Device(configs)
    served: dict[str, object] = {}
    runner = threading.Thread(target=lambda: served.update(reports=device.serve()))
    runner.start()
    try:
        socket_a = tmp_path / "room-a" / SOCKET_NAME
        deadline = time.monotonic() + 60
        while not (socket_a.exists() and (tmp_path / "room-b" / SOCKET_NAME).exists()):
            assert time.monotonic() < deadline, "rooms did not reach standby"
            time.sleep(0.2)
        start = {"command": "start", "consent": {"method": "verbal", "recorded_by": "staff-test"}}
        assert send(socket_a, start)["result"] == "ok"
        time.sleep(4.0)
        status_b = send(tmp_path / "room-b" / SOCKET_NAME, {"command": "status"})
        assert send(socket_a, {"command": "stop"})["result"] == "ok"
        time.sleep(1.0)
    finally:
        device.request_stop()
        runner.join(timeout=60)
    assert not runner.is_alive()
    assert status_b["state"] == "standby"  # room B never left standby
    reports = served["reports"]
    assert isinstance(reports, list) and len(reports) == 1 and reports[0].room == "test-site/room-a"
    assert _windows(tmp_path / "room-a" / "clinic-edge.db") >= 1
    assert _windows(tmp_path / "room-b" / "clinic-edge.db") == 0
