"""Ingest that bad messages cannot stop: every finding of the hub review as a table case (each is set
aside in the dead-letter table with its reason, counted, and changes no aggregate), then random and
hostile payloads thrown at a running hub through a real mosquitto, after which a valid summary is
still stored. Real SQLite, mosquitto and paho."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from conftest import start_broker
from hub_helpers import hub_config, running_hub, summary, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.service import open_database
from hub.store import dead_letters, devices, messages, sessions

TOPIC = "clinic/v1/north/r1/summary"
SESSION = "0b0e8f4e-8a5c-4c47-9d6c-3a0d2c1f7e11"
TODAY = dt.datetime.now(dt.timezone.utc).date()


def _valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(summary("north", "r1", "dev-r1", 5, SESSION, TODAY.isoformat()).model_dump_json())
    for path, value in changes.items():
        node = body
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return body


def _bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _sum_to_eight(body: dict[str, Any]) -> dict[str, Any]:
    body["emotion"]["probs"] = dict.fromkeys(body["emotion"]["probs"], 1.0)
    return body


CASES: list[tuple[str, str, Callable[[], bytes], str]] = [
    ("seq of 2**63 (an SQLite overflow)", TOPIC, lambda: _bytes(_valid(seq=2**63)), "malformed"),
    ("end_s Infinity", TOPIC, lambda: json.dumps(_valid(span__end_s=float("inf"))).encode(), "malformed"),
    ("end_s 1e308", TOPIC, lambda: _bytes(_valid(span__end_s=1e308)), "malformed"),
    ("a billion windows", TOPIC, lambda: _bytes(_valid(span__windows=10**9)), "malformed"),
    ("probabilities summing to 8", TOPIC, lambda: _bytes(_sum_to_eight(_valid())), "malformed"),
    ("a negative quality count", TOPIC, lambda: _bytes(_valid(quality={"silence": -5})), "malformed"),
    ("started in year 1", TOPIC, lambda: _bytes(_valid(span__started_at="0001-01-01T00:00:00+00:00")), "malformed"),
    ("started in 9999", TOPIC, lambda: _bytes(_valid(span__started_at="9999-01-01T00:00:00+00:00")), "malformed"),
    (
        "started a week ahead of the hub's clock",
        TOPIC,
        lambda: _bytes(_valid(span__started_at=f"{TODAY + dt.timedelta(days=7)}T10:00:00+00:00")),
        "out_of_range",
    ),
    ("a 50 MiB payload", TOPIC, lambda: b'{"pad": "' + b"x" * (50 * 1024 * 1024) + b'"}', "too_large"),
    ("not JSON", TOPIC, lambda: b"\xff\xfe{not json", "malformed"),
    ("JSON nested 30000 deep", TOPIC, lambda: b"[" * 30_000 + b"]" * 30_000, "malformed"),
    ("the payload names another room", "clinic/v1/north/r2/summary", lambda: _bytes(_valid()), "identity"),
    # Another room's device id in a room's own topic names a device of that room (the broker's ACL
    # decides which room a message is from): tests/test_hub_attacks.py shows it blocks nothing.
    (
        "the session of another device of the same room",
        TOPIC,
        lambda: _bytes(_valid(device_id="dev-other", message_id=str(uuid.uuid4()))),
        "identity",
    ),
    (
        "a session_id of another site",
        "clinic/v1/south/r1/summary",
        lambda: _bytes(_valid(site="south", device_id="dev-south", message_id=str(uuid.uuid4()))),
        "identity",
    ),
    ("an unknown topic", "clinic/v1/north/r1/secrets", lambda: _bytes(_valid()), "topic"),
]


def _table(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings().all()]


@pytest.mark.parametrize(("case", "topic", "payload", "reason"), CASES, ids=[c[0] for c in CASES])
def test_each_hostile_message_is_set_aside_and_changes_nothing(
    tmp_path: Path, case: str, topic: str, payload: Callable[[], bytes], reason: str
) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    metrics = HubMetrics()
    ingest = Ingest(engine, metrics)
    first = ingest.handle(TOPIC, _bytes(_valid()))  # the room's device and session are known
    assert first.result == "stored"
    before = (_table(engine, sessions), _table(engine, devices), len(_table(engine, messages)))

    body = payload()
    outcome = ingest.handle(topic, body)

    assert outcome.result == "invalid" and outcome.detail.startswith(reason), (case, outcome)
    assert (_table(engine, sessions), _table(engine, devices), len(_table(engine, messages))) == before
    (letter,) = _table(engine, dead_letters)
    assert letter["reason"].startswith(reason) and letter["bytes"] == len(body) and len(letter["sha256"]) == 64
    assert set(letter) == {"id", "received_at", "topic", "reason", "bytes", "sha256"}  # never the payload
    assert metrics.dead_letters.labels(reason)._value.get() == 1
    # Ingest goes on: the room's next summary is stored.
    nxt = ingest.handle(TOPIC, _bytes(_valid(seq=6, message_id=str(uuid.uuid4()))))
    assert nxt.result == "stored"


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
)
FIELDS = ("seq", "site", "room", "device_id", "session_id", "message_id", "kind", "span", "emotion", "quality")


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """A random payload: bytes, any JSON, or a valid summary with one field replaced by anything."""
    form = draw(st.sampled_from(("bytes", "json", "mutated")))
    if form == "bytes":
        return draw(st.binary(max_size=300))
    if form == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    body = _valid(message_id=str(uuid.uuid4()))
    body[draw(st.sampled_from(FIELDS))] = draw(JSON_VALUES)
    return json.dumps(body).encode()


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("hostile")
    broker = start_broker(tmp)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="hostile", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        with running_hub(hub_config(tmp, broker.port)) as hub:
            yield hub, client
    finally:
        client.loop_stop()
        client.disconnect()
        broker.stop()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(hostile(), min_size=5, max_size=25))
def test_random_and_hostile_payloads_never_stop_ingest(live_hub: Any, payloads: list[bytes]) -> None:
    hub, client = live_hub
    for payload in payloads:
        client.publish(TOPIC, payload, qos=1).wait_for_publish(timeout=10)
    valid = _valid(message_id=str(uuid.uuid4()))
    client.publish(TOPIC, _bytes(valid), qos=1).wait_for_publish(timeout=10)

    def stored() -> bool:
        with hub.ingest.engine.begin() as conn:
            query = sa.select(messages.c.message_id).where(messages.c.message_id == valid["message_id"])
            return conn.execute(query).first() is not None

    wait_for(stored, what="the valid summary after the hostile ones")
    assert hub.subscriber.connected.is_set()
