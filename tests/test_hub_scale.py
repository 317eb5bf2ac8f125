"""The hub at scale: batches store exactly what one-by-one storing stores, and ingest workers sharing
the stream through a real mosquitto lose nothing and count nothing twice when one is SIGKILLed.
Real SQLite and PostgreSQL, real mosquitto, the real ``clinic-hub ingest`` processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from conftest import ROOT, start_broker
from hub_helpers import hub_config, postgres, status, summary, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.service import open_database
from hub.store import dead_letters, devices, gaps, messages, sessions

TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()
HUB = [sys.executable, "-m", "hub"]


def _messages() -> list[tuple[str, bytes]]:
    """Two rooms: a gap filled late, a duplicate inside the batch, another room's device, a status,
    a malformed payload, a second session of the same room."""
    s1, s2, s3 = (str(uuid.uuid4()) for _ in range(3))

    def msg(room: str, device: str, seq: int, session: str, **kw: Any) -> tuple[str, bytes]:
        body = summary("north", room, device, seq, session, TODAY, **kw).model_dump_json().encode()
        return f"clinic/v1/north/{room}/summary", body

    dup = msg("r1", "d1", 2, s1)
    return [
        msg("r1", "d1", 1, s1),
        dup,
        msg("r1", "d1", 5, s1, windows=2),  # 3 and 4 missing
        ("clinic/v1/north/r1/status", status("d1").model_dump_json().encode()),
        msg("r1", "d1", 3, s1),  # late: fills half the gap
        dup,  # the same message again
        msg("r2", "d2", 1, s2, label="sad"),
        msg("r2", "d1", 6, s2),  # r1's device published from r2: refused
        ("clinic/v1/north/r2/summary", b'{"schema_version": 3'),
        msg("r2", "d2", 2, s2),
        msg("r1", "d1", 6, s3),
        msg("r2", "d2", 3, s1),  # r1's session from r2: refused
    ]


def _state(engine: sa.Engine) -> dict[str, Any]:
    with engine.begin() as conn:
        return {
            "sessions": sorted(
                tuple(r) for r in conn.execute(sa.select(*[c for c in sessions.c if c.name != "sealed_in"]))
            ),
            "devices": sorted(
                (r.device_id, r.site, r.room, r.state, r.last_seq, r.summaries, r.duplicates, r.missing)
                for r in conn.execute(sa.select(devices))
            ),
            "gaps": sorted((r.device_id, r.from_seq, r.to_seq) for r in conn.execute(sa.select(gaps))),
            "messages": conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one(),
            "dead": sorted(r.reason.split(":")[0] for r in conn.execute(sa.select(dead_letters))),
        }


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'batch.db'}"
        return
    with postgres(tmp_path) as pg:
        base = pg.url.rsplit("/", 1)[0]
        admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE batch"))
        admin.dispose()
        yield pg.url, base + "/batch"


def test_a_batch_stores_exactly_what_one_by_one_storing_stores(tmp_path: Path, two_databases: tuple[str, str]) -> None:
    items = _messages()
    one_url, batch_url = two_databases
    one = Ingest(open_database(hub_config(tmp_path, 1883, url=one_url)), HubMetrics())
    batch = Ingest(open_database(hub_config(tmp_path, 1883, url=batch_url)), HubMetrics())
    singly = [one.handle(topic, payload) for topic, payload in items]
    together = batch.store_batch(items)
    assert [o.result for o in together] == [o.result for o in singly]
    assert [o.result for o in together] == [
        "stored", "stored", "stored", "stored", "stored", "duplicate",
        "stored", "invalid", "invalid", "stored", "stored", "invalid",
    ]  # fmt: skip
    state = _state(batch.engine)
    assert state == _state(one.engine)
    assert state["gaps"] == [("north/r1/d1", 4, 4)] and state["messages"] == 7
    assert state["dead"] == ["identity", "identity", "malformed"]
    d1 = next(d for d in state["devices"] if d[0] == "north/r1/d1")
    assert d1 == ("north/r1/d1", "north", "r1", "online", 6, 5, 1, 1)
    at = [c.name for c in sessions.c if c.name != "sealed_in"].index("windows")
    windows = {r[0]: r[at] for r in state["sessions"]}  # session_id -> windows
    assert sorted(windows.values()) == [1, 2, 5]  # r1's first session: 1+1+2+1; r2's: 1+1; r1's second: 1
    # Storing the same batch again changes nothing but the duplicate counts.
    again = batch.store_batch(items)
    assert {o.result for o in again} == {"duplicate", "invalid", "stored"}
    assert [o.result for o in again].count("stored") == 1  # only the status
    assert _state(batch.engine)["sessions"] == state["sessions"]
    one.engine.dispose()
    batch.engine.dispose()


def _config(tmp: Path, broker: int, url: str, name: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f"""client_id = "hub"
max_age_days = 3650
[mqtt]
host = "127.0.0.1"
port = {broker}
[database]
url = "{url}"
[ingest]
share_group = "ingest"
batch_size = 50
batch_ms = 20
[metrics]
port = 0
""",
        encoding="utf-8",
    )
    return path


def _count(engine: sa.Engine, column: sa.ColumnElement[Any]) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(column, 0))).scalar_one())


class Group:
    """Real ``clinic-hub ingest`` workers of one share group, rooms publishing, a presence watcher."""

    def __init__(self, tmp: Path, broker: int, url: str, rooms: int = 20) -> None:
        self.tmp, self.broker, self.rooms = tmp, broker, rooms
        self.config = _config(tmp, broker, url, "hub")
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.presence: set[str] = set()
        self.watcher = self._client()
        self.watcher.on_message = lambda _c, _u, m: self.presence.add(
            f"{m.topic.rsplit('/', 1)[-1]}={m.payload.decode() or 'retired'}"
        )
        self.watcher.subscribe("clinic/v1/_hub/workers/ingest/+", qos=1)
        self.publisher = self._client()
        self.sessions = [str(uuid.uuid4()) for _ in range(rooms)]

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(200)
        client.connect("127.0.0.1", self.broker)
        client.loop_start()
        return client

    def hub(self, *args: str) -> list[str]:
        return [*HUB, "--config", str(self.config), "ingest", *args]

    def start(self, *names: str) -> None:
        for name in names:
            with self.log(name).open("wb") as log:
                self.workers[name] = subprocess.Popen(self.hub("--worker", name), stderr=log, cwd=ROOT)
        wanted = {f"{n}=online" for n in names}
        wait_for(lambda: wanted <= self.presence, timeout=120, what=f"{names} online")

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def publish(self, seqs: range) -> None:
        infos = []
        for seq in seqs:
            for r in range(self.rooms):
                s = summary("north", f"r{r}", f"d{r}", seq, self.sessions[r], TODAY)
                infos.append(self.publisher.publish(f"clinic/v1/north/r{r}/summary", s.model_dump_json(), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=120)

    def close(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        for client in (self.watcher, self.publisher):
            client.loop_stop()
            client.disconnect()


def _stored(engine: sa.Engine) -> int:
    return _count(engine, sa.func.sum(devices.c.summaries))


def _exactly_once(engine: sa.Engine, total: int, rooms: int) -> None:
    with engine.begin() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
        windows = conn.execute(sa.select(sa.func.sum(sessions.c.windows))).scalar_one()
        per_device = conn.execute(sa.select(devices.c.summaries, devices.c.missing)).all()
        dead = conn.execute(sa.select(sa.func.count()).select_from(dead_letters)).scalar_one()
    assert stored == total and windows == total and dead == 0  # no loss, nothing counted twice
    assert all(row == (total // rooms, 0) for row in per_device), per_device


def test_two_workers_share_the_stream_and_a_sigkilled_one_loses_nothing(tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    first, second = 600, 1200
    with postgres(tmp_path) as pg:
        engine = open_database(hub_config(tmp_path, broker.port, url=pg.url))
        group = Group(tmp_path, broker.port, pg.url)
        try:
            group.start("w0", "w1")
            group.publish(range(1, first // group.rooms + 1))
            # Mid-stream: once some are stored, and the broker still holds more for each worker.
            wait_for(lambda: _stored(engine) >= 100, timeout=180, what="100 stored")
            os.kill(group.workers["w0"].pid, signal.SIGKILL)
            group.workers["w0"].wait(timeout=30)
            stored_at_kill = _stored(engine)
            wait_for(lambda: "w0=offline" in group.presence, timeout=60, what="w0's last will")
            group.publish(range(first // group.rooms + 1, second // group.rooms + 1))
            wait_for(lambda: _stored(engine) >= second, timeout=300, what=f"all {second} stored by the survivor")
            assert stored_at_kill < second
            _exactly_once(engine, second, group.rooms)
            survivor = group.log("w1").read_text(encoding="utf-8")
            assert "worker w0 is offline: storing its share of the stream here" in survivor
        finally:
            group.close()
            engine.dispose()
            broker.stop()


def test_a_retired_worker_s_session_ends_and_the_stream_goes_to_the_others(tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    with postgres(tmp_path) as pg:
        engine = open_database(hub_config(tmp_path, broker.port, url=pg.url))
        group = Group(tmp_path, broker.port, pg.url)
        try:
            group.start("w0", "w1")
            group.publish(range(1, 11))
            group.workers["w0"].send_signal(signal.SIGTERM)  # stopped as its service would be
            assert group.workers["w0"].wait(timeout=60) == 0
            wait_for(lambda: "w0=stopped" in group.presence, timeout=60, what="w0 stopped")
            group.publish(range(11, 21))  # a share of these goes to w0's session, which w1 adopts
            done = subprocess.run(
                group.hub("--worker", "w0", "--retire"), capture_output=True, text=True, cwd=ROOT, timeout=300
            )
            assert done.returncode == 0, done.stderr
            assert "worker w0 retired: its session ended at the broker" in done.stdout
            wait_for(lambda: "w0=retired" in group.presence, timeout=60, what="w0's presence cleared")
            # With w0's session still at the broker and nobody adopting it, half of these would wait.
            group.publish(range(21, 41))
            wait_for(lambda: _stored(engine) >= 40 * group.rooms, timeout=300, what="all 800 stored")
            _exactly_once(engine, 40 * group.rooms, group.rooms)
            # Clean stops acknowledge what they stored before leaving: nothing came twice.
            assert _count(engine, sa.func.sum(devices.c.duplicates)) == 0
        finally:
            group.close()
            engine.dispose()
            broker.stop()


def test_hub_processes_starting_together_create_the_schema_one_at_a_time(tmp_path: Path) -> None:
    """Four processes opening a new PostgreSQL database at once (workers and dashboard started
    together): all start; PostgreSQL would refuse concurrent grants ("tuple concurrently updated")."""
    with postgres(tmp_path) as pg:
        config = _config(tmp_path, 1883, pg.url, "hub")
        procs = [
            subprocess.Popen([*HUB, "--config", str(config), "release"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        results = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
        assert [code for _, code in results] == [0, 0, 0, 0], results


def test_dashboards_releasing_together_make_each_release_once(tmp_path: Path) -> None:
    """Three processes releasing the same closed weeks at once (two dashboards by mistake, and a
    person running clinic-hub release): each period is released once, as version 1."""
    with postgres(tmp_path) as pg:
        engine = open_database(hub_config(tmp_path, 1883, url=pg.url))
        try:
            _release_together(tmp_path, engine, pg.url)
        finally:
            engine.dispose()


def _release_together(tmp_path: Path, engine: sa.Engine, url: str) -> None:
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    start = dt.date.fromisoformat(TODAY) - dt.timedelta(days=60)
    for i in range(300):  # 30 days of sessions in two rooms
        day = (start + dt.timedelta(days=i % 30)).isoformat()
        body = summary("north", f"r{i % 2}", f"d{i % 2}", i + 1, str(uuid.uuid4()), day).model_dump_json()
        assert ingest.handle(f"clinic/v1/north/r{i % 2}/summary", body.encode()).result == "stored"
    config = _config(tmp_path, 1883, url, "hub")
    procs = [
        subprocess.Popen([*HUB, "--config", str(config), "release"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.communicate(timeout=300)[1], p.returncode) for p in procs]
    assert [code for _, code in results] == [0, 0, 0], results
    with engine.begin() as conn:
        made = conn.execute(sa.text("SELECT grain, period, version FROM releases")).all()
    assert made and len(made) == len(set(made)) and {v for _, _, v in made} == {1}, made


def test_a_worker_of_a_share_group_needs_a_name(tmp_path: Path) -> None:
    config = _config(tmp_path, 1883, f"sqlite:///{tmp_path / 'hub.db'}", "hub")
    done = subprocess.run([*HUB, "--config", str(config), "ingest"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "needs a name: clinic-hub ingest --worker NAME" in done.stderr
