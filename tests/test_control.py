"""Session control: consent before anything is recorded; pause releases the devices at once;
malformed, oversized and unauthorised commands change nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest

from contract.payload import Retract
from edge.config import load_config
from edge.config.load import parse_config
from edge.control import CommandError, parse_command
from edge.control.commands import Explain, Pause, Resume, Start, StatusQuery, Stop, check_fresh, stamped
from edge.control.local import SOCKET_NAME, ControlSocket, send
from edge.control.state import SessionControl
from edge.errors import ConfigError
from edge.runtime import Appliance
from tests.conftest import Broker, collect, write_config

START = {"command": "start", "consent": {"method": "verbal", "recorded_by": "staff-17", "reference": "c-2041"}}
NOW = '"issued_at": "2026-11-30T10:00:00+00:00"'
T0 = datetime(2026, 11, 30, 10, 0, 0, tzinfo=timezone.utc)


SID = b"3f2a9c1e-0b6d-4c1e-9f5a-2d7c8e9b0a11"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("raw", "expectation"),
    [
        (json.dumps(stamped(START)).encode(), nullcontext()),
        (b"{" + NOW.encode() + b', "command": "pause"}', nullcontext()),
        (
            b"{" + NOW.encode() + b', "command": "start"}',
            pytest.raises(CommandError, match=r"start\.consent: Field required"),
        ),
        (
            b"{" + NOW.encode() + b', "command": "start", "consent": {"method": "nodded", "recorded_by": "s"}}',
            pytest.raises(CommandError, match=r"consent\.method"),
        ),
        (
            b"{"
            + NOW.encode()
            + b', "command": "start", "consent": {"method": "verbal", "recorded_by": "Dr. Jane Doe"}}',
            pytest.raises(CommandError, match=r"recorded_by"),
        ),
        (
            b"{" + NOW.encode() + b', "command": "pause", "now": true}',
            pytest.raises(CommandError, match=r"Extra inputs are not permitted"),
        ),
        (b"{" + NOW.encode() + b', "command": "explain", "seconds": 90}', nullcontext()),
        (
            b"{" + NOW.encode() + b', "command": "explain", "seconds": 86400}',
            pytest.raises(CommandError, match=r"explain\.seconds"),
        ),
        (
            b"{" + NOW.encode() + b', "command": "reboot"}',
            pytest.raises(CommandError, match=r"does not match any of the expected tags"),
        ),
        (b'{"command": "pause"}', pytest.raises(CommandError, match=r"pause\.issued_at: Field required")),
        (
            b'{"command": "pause", "issued_at": "2026-11-30T10:00:00"}',
            pytest.raises(CommandError, match=r"issued_at: Input should have timezone info"),
        ),
        (
            b"{" + NOW.encode() + b', "command": "erase", "session_id": "' + SID + b'", "requested_by": "staff-17", '
            b'"confirm": "3f2a9c1e"}',
            nullcontext(),
        ),
        (
            b"{" + NOW.encode() + b', "command": "erase", "session_id": "' + SID + b'", "requested_by": "staff-17", '
            b'"confirm": "3f2a9c1f"}',
            pytest.raises(CommandError, match=r"confirm must repeat the session id's first 8 characters"),
        ),
        (
            b"{" + NOW.encode() + b', "command": "erase", "session_id": "../../etc", "requested_by": "s", '
            b'"confirm": "../../et"}',
            pytest.raises(CommandError, match=r"erase\.session_id"),
        ),
        (b"\xff\xfe", pytest.raises(CommandError, match=r"not UTF-8 JSON")),
        (b"[" * 5000, pytest.raises(CommandError, match=r"5000 bytes exceeds the 1024-byte limit")),
        (b"[" * 1000, pytest.raises(CommandError)),
        (b"null", pytest.raises(CommandError, match=r"valid dictionary")),
    ],
)
def test_parse_command(raw: bytes, expectation: AbstractContextManager[Any]) -> None:
    with expectation:
        parse_command(raw)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2048)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode())
)
def test_fuzzed_commands_are_accepted_or_refused_cleanly(raw: bytes) -> None:
    with contextlib.suppress(CommandError):
        parse_command(raw)


_TOML_VALUES = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=30)
)


@pytest.mark.unit
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "room",
                "capture",
                "windows",
                "vision",
                "audio",
                "models",
                "inference",
                "storage",
                "mqtt",
                "metrics",
                "bogus",
            ]
        ),
        st.dictionaries(st.text(max_size=20), _TOML_VALUES, max_size=5) | _TOML_VALUES,
        max_size=6,
    )
)
def test_fuzzed_configs_give_config_errors_only(data: dict[str, Any]) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(data, Path("/etc/clinic-edge"))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("commands", "final", "refused"),
    [
        ([Pause(command="pause", issued_at=T0)], "standby", 1),
        ([Start.model_validate(stamped(START))], "standby", 0),  # start is picked up by the appliance
        ([Resume(command="resume", issued_at=T0)], "standby", 1),
        ([Stop(command="stop", issued_at=T0)], "standby", 1),
        ([StatusQuery(command="status", issued_at=T0)], "standby", 0),
    ],
)
def test_state_machine_in_standby(commands: list[Any], final: str, refused: int) -> None:
    control = SessionControl()
    errors = 0
    for command in commands:
        try:
            control.handle(command, "test")
        except CommandError:
            errors += 1
    assert control.state == final
    assert errors == refused


@pytest.mark.unit
def test_state_machine_while_recording() -> None:
    control = SessionControl()
    control.handle(Start.model_validate(stamped(START)), "test")
    with pytest.raises(CommandError, match=r"already"):
        control.handle(Start.model_validate(stamped(START)), "test")
    control.begin(control.consent)  # type: ignore[arg-type]
    assert control.handle(Pause(command="pause", issued_at=T0), "t") == {"result": "ok", "state": "paused"}
    with pytest.raises(CommandError, match=r"cannot pause: the session is paused"):
        control.handle(Pause(command="pause", issued_at=T0), "t")
    with pytest.raises(CommandError, match=r"cannot explain: the session is paused"):
        control.handle(Explain(command="explain", seconds=30, issued_at=T0), "t")
    assert control.handle(Resume(command="resume", issued_at=T0), "t")["state"] == "recording"
    now = time.monotonic()
    assert not control.explain_requested(now)
    assert control.handle(Explain(command="explain", seconds=30, issued_at=T0), "t")["state"] == "recording"
    assert control.explain_requested(now + 29) and not control.explain_requested(now + 31)
    assert control.handle(Stop(command="stop", issued_at=T0), "t")["state"] == "stopping"
    assert control.stop_requested.is_set()
    control.end()
    assert not control.explain_requested(now)  # a request ends with its session


def _metric(appliance: Appliance, name: str, label: str = "") -> float:
    for line in generate_latest(appliance.metrics.registry).decode().splitlines():
        if line.startswith(name + label + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _cli_control(cfg: Path, *args: str, expect_rc: int = 0) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "control", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == expect_rc, proc.stderr
    if expect_rc:
        return {"stderr": proc.stderr}
    return dict(item.split("=", 1) for item in proc.stdout.split())


def _wait(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_service_session_lifecycle(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    """standby -> start (CLI, with consent) -> pause (MQTT) -> resume (CLI) -> stop (MQTT) -> standby."""
    status = collect(broker.host, broker.port, "clinic/v1/+/+/status")
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    appliance = Appliance(load_config(cfg), "test:")
    reports: list[Any] = []
    service = threading.Thread(target=lambda: reports.extend(appliance.serve()))
    service.start()
    sender = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.connect(broker.host, broker.port)
    sender.loop_start()
    topic = "clinic/v1/test-site/room-a/command"
    try:
        assert _wait((tmp_path / "s" / "control.sock").exists)
        time.sleep(2.0)
        assert _metric(appliance, "clinic_edge_frames_total") == 0  # nothing is analysed without consent
        assert _cli_control(cfg, "status") == {"result": "ok", "state": "standby"}
        refused = _cli_control(cfg, "start", expect_rc=2)  # no consent given: refused before sending
        assert "a session starts only with consent" in refused["stderr"]
        reply = _cli_control(
            cfg, "start", "--consent", "verbal", "--consent-by", "staff-17", "--consent-reference", "c-2041"
        )
        assert reply == {"result": "ok", "state": "starting"}
        assert _wait(lambda: _metric(appliance, "clinic_edge_frames_total") > 10)

        sender.publish(topic, json.dumps(stamped({"command": "pause"})), qos=1).wait_for_publish(5)
        assert _wait(lambda: appliance.control.state == "paused")
        time.sleep(1.0)  # let in-flight frames drain
        frames = _metric(appliance, "clinic_edge_frames_total")
        time.sleep(2.5)
        assert _metric(appliance, "clinic_edge_frames_total") == frames  # devices released: nothing flows

        # malformed, oversized and unknown commands change nothing
        for bad in (b"{", b"x" * 5000, b'{"command": "format-disk"}', b'{"command": "resume", "force": 1}'):
            sender.publish(topic, bad, qos=1).wait_for_publish(5)
        assert _wait(lambda: _metric(appliance, "clinic_edge_commands_total", '{result="rejected"}') >= 4)
        assert appliance.control.state == "paused"

        assert _cli_control(cfg, "resume") == {"result": "ok", "state": "recording"}
        assert _wait(lambda: _metric(appliance, "clinic_edge_frames_total") > frames + 10)
        time.sleep(3.0)
        sender.publish(topic, json.dumps(stamped({"command": "stop"})), qos=1).wait_for_publish(5)
        assert _wait(lambda: appliance.control.state == "standby", timeout=30)

        conn = sqlite3.connect(tmp_path / "s" / "clinic-edge.db")
        conn.row_factory = sqlite3.Row
        (row,) = conn.execute("SELECT * FROM sessions").fetchall()
        assert (row["consent_method"], row["consent_recorded_by"], row["consent_reference"]) == (
            "verbal",
            "staff-17",
            "c-2041",
        )
        assert row["pauses"] == 1 and row["paused_s"] >= 3.0
        idx = [r[0] for r in conn.execute("SELECT idx FROM windows ORDER BY idx")]
        assert idx == list(range(len(idx))) and len(idx) >= 3
        conn.close()

        # The client withdraws consent: the finished session is erased through the running appliance.
        retracts = collect(broker.host, broker.port, "clinic/v1/+/+/retract")
        erased_id = str(row["id"])
        wrong = stamped(
            {"command": "erase", "session_id": erased_id, "requested_by": "staff-17", "confirm": "00000000"}
        )
        sender.publish(topic, json.dumps(wrong), qos=1).wait_for_publish(5)  # not confirmed: refused
        assert _wait(lambda: _metric(appliance, "clinic_edge_commands_total", '{result="rejected"}') >= 5)
        erased = _cli_control(cfg, "erase", "--session", erased_id, "--requested-by", "staff-17", "--yes")
        assert erased["result"] == "ok" and erased["erased"] == erased_id and int(erased["windows"]) >= 3
        (retract,) = retracts.wait_for("retract", 1)
        retracts.close()
        assert Retract.model_validate(retract).session_id == erased_id
    finally:
        appliance.request_stop()
        service.join(timeout=60)
        sender.loop_stop()
        sender.disconnect()
        states = status.wait_for("status", 5)
        status.close()

    sessions = [s["session"] for s in states]
    assert "recording" in sessions and "paused" in sessions
    assert sessions[-1] == "standby"
    assert len(reports) == 1 and reports[0].windows >= 3
    # What the session held (consent, pauses, windows) was checked above, before it was erased.
    conn = sqlite3.connect(tmp_path / "s" / "clinic-edge.db")
    for table in ("sessions", "windows", "events", "transcripts"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    review = sqlite3.connect(tmp_path / "s" / "review.db")
    entries = list(review.execute("SELECT actor, action, target FROM audit_log"))
    assert entries == [("local socket: staff-17", "session erased", erased_id)]  # the unconfirmed one never got there


def _echo(raw: bytes, origin: str) -> dict[str, str]:
    return {"result": "ok", "origin": origin, "raw": raw.decode()}


@pytest.mark.unit
def test_control_socket_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive mask a service could be started with
    try:
        control = ControlSocket(tmp_path / SOCKET_NAME, _echo)
    finally:
        os.umask(old)
    control.start()
    try:
        assert (tmp_path / SOCKET_NAME).stat().st_mode & 0o777 == 0o600
        assert stat.S_ISSOCK((tmp_path / SOCKET_NAME).stat().st_mode)
        assert sorted(p.name for p in tmp_path.iterdir()) == [SOCKET_NAME]  # no staging folder left
        reply = send(tmp_path / SOCKET_NAME, {"command": "status"})
        assert reply["result"] == "ok" and reply["origin"] == "local socket"
        sent = json.loads(reply["raw"])
        assert sent.pop("issued_at") and sent == {"command": "status"}  # the client stamps the time
    finally:
        control.close()
    assert not (tmp_path / SOCKET_NAME).exists()


@pytest.mark.unit
def test_control_sockets_leave_other_threads_files_alone(tmp_path: Path) -> None:
    """Rooms of one process open their control sockets while other threads create folders: the
    folders get the mode they ask for and the process keeps its umask."""
    before = os.umask(0o022)
    os.umask(before)
    stop = threading.Event()
    modes: list[int] = []

    def make_folders() -> None:
        n = 0
        while not stop.is_set():
            folder = tmp_path / "folders" / str(n)
            folder.mkdir(parents=True, mode=0o700)
            modes.append(folder.stat().st_mode & 0o777)
            n += 1

    def open_sockets(room: int) -> None:
        for _ in range(30):
            ControlSocket(tmp_path / f"room-{room}.sock", _echo).close()

    maker = threading.Thread(target=make_folders)
    rooms = [threading.Thread(target=open_sockets, args=(room,)) for room in range(4)]
    maker.start()
    for room in rooms:
        room.start()
    for room in rooms:
        room.join()
    stop.set()
    maker.join()
    after = os.umask(before)
    assert after == before
    assert modes and set(modes) == {0o700 & ~before}


def test_an_idle_client_does_not_hold_up_a_pause(tmp_path: Path) -> None:
    """A client that connects and says nothing (a stuck script, a half-open terminal) used to hold
    the socket: commands waited behind it. Now they are served beside it, and it is dropped."""
    control = ControlSocket(tmp_path / SOCKET_NAME, _echo, idle_timeout_s=2.0)
    control.start()
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        idle.connect(str(tmp_path / SOCKET_NAME))
        reply = send(tmp_path / SOCKET_NAME, {"command": "pause"}, timeout_s=30)  # served while it waits
        assert reply["result"] == "ok" and json.loads(reply["raw"])["command"] == "pause"
        idle.settimeout(60)
        assert idle.recv(1) == b""  # the idle client is dropped (the server closed its end)
    finally:
        idle.close()
        control.close()


@pytest.mark.unit
def test_more_clients_than_allowed_get_a_busy_reply(tmp_path: Path) -> None:
    from edge.control.local import MAX_CLIENTS

    control = ControlSocket(tmp_path / SOCKET_NAME, _echo, idle_timeout_s=60.0)
    control.start()
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(MAX_CLIENTS)]
    try:
        for s in idle:
            s.connect(str(tmp_path / SOCKET_NAME))
        deadline = 600  # one attempt per 50 ms at most; the slots fill as the server accepts
        for _ in range(deadline):
            reply = send(tmp_path / SOCKET_NAME, {"command": "status"}, timeout_s=30)
            if reply.get("error") == "busy: too many clients":
                break
            threading.Event().wait(0.05)
        assert reply == {"result": "error", "error": "busy: too many clients"}
    finally:
        for s in idle:
            s.close()
        control.close()


def _at(command: dict[str, Any], issued_s: float, recorded_s: float | None = None) -> Any:
    """``command`` issued ``issued_s`` after T0 (negative: before), consent recorded at ``recorded_s``."""
    data = dict(command, issued_at=(T0 + timedelta(seconds=issued_s)).isoformat())
    if recorded_s is not None:
        data["consent"] = dict(data["consent"], recorded_at=(T0 + timedelta(seconds=recorded_s)).isoformat())
    return parse_command(json.dumps(data).encode())


@pytest.mark.unit
@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (_at({"command": "pause"}, -10), None),
        (_at({"command": "pause"}, -59), None),
        (_at({"command": "pause"}, -61), "stale command: issued 61 s ago"),
        (_at({"command": "stop"}, -3600), "stale command"),  # a command that waited in a queue for an hour
        (_at({"command": "pause"}, 120), "issued 120 s in the future"),
        (_at(START, -5), None),  # consent time: the command's
        (_at(START, -5, recorded_s=-1800), None),  # recorded half an hour before
        (_at(START, -5, recorded_s=-2 * 3600), "consent recorded 120 min ago (at most 60 min)"),
        (_at(START, -5, recorded_s=3600), "consent recorded in the future"),
    ],
)
def test_stale_commands_and_stale_consent_are_refused(command: Any, problem: str | None) -> None:
    if problem is None:
        fresh = check_fresh(command, T0, ttl_s=60, consent_max_age_s=3600)
        if isinstance(fresh, Start):
            assert fresh.consent.recorded_at == (command.consent.recorded_at or command.issued_at)
    else:
        with pytest.raises(CommandError, match=re.escape(problem)):
            check_fresh(command, T0, ttl_s=60, consent_max_age_s=3600)


def test_a_retained_start_never_starts_a_session_and_is_cleared(
    tmp_path: Path, face_model: Path, broker: Broker
) -> None:
    """A start left retained on the command topic used to start a session at every connection, with
    consent stamped "now"."""
    topic = "clinic/v1/test-site/room-a/command"
    sender = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.connect(broker.host, broker.port)
    sender.loop_start()
    sender.publish(topic, json.dumps(stamped(START)), qos=1, retain=True).wait_for_publish(5)
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    appliance = Appliance(load_config(cfg), "test:")
    service = threading.Thread(target=appliance.serve)
    service.start()

    def retained_start_gone() -> bool:
        """A new subscriber's first message is a live marker, not the retained start."""
        fresh = collect(broker.host, broker.port, topic)
        try:
            sender.publish(topic, json.dumps(stamped({"command": "status"})), qos=1).wait_for_publish(5)
            first = fresh.wait_for("command", 1)
            return bool(first) and first[0]["command"] == "status"
        finally:
            fresh.close()

    try:
        assert _wait((tmp_path / "s" / "control.sock").exists)
        assert _wait(retained_start_gone, timeout=60)  # cleared by the appliance
        assert _wait(lambda: _metric(appliance, "clinic_edge_commands_total", '{result="accepted"}') >= 1)
        assert appliance.control.state == "standby" and not appliance.control.start_requested.is_set()
    finally:
        appliance.request_stop()
        service.join(timeout=60)
        sender.loop_stop()
        sender.disconnect()
