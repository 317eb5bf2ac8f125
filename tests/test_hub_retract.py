"""Retractions at the hub: a room erased a session on request (consent withdrawn) and publishes a
``retract`` in its sequence. What is not released yet is dropped; what was released stays as it is
(never changed), unlinked from the session, and the change is recorded without it. Disparity events
hold their place in the sequence. Real SQLite through the hub's own ingest and release code."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import sqlalchemy as sa
from conftest import free_port, start_broker
from hub_helpers import Browserless, hub_config, running_hub, summary, wait_for
from hub_helpers import Room as HubRoom

from contract.payload import Event, Retract
from hub.bulk import session_hash
from hub.dashboard import withdrawn_after_release
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.release import policy_for, release_due
from hub.service import open_database
from hub.store import dead_letters, devices, gaps, retracted, retractions, sessions, shown_cells
from hub.users import add_user

TODAY = dt.datetime.now(dt.timezone.utc).date()
OLD_DAY = (TODAY - dt.timedelta(days=10)).isoformat()  # released by the time of the test
BASE = "clinic/v1/north/r1"
PASSWORD = "correct horse battery staple"
K = 11  # the hub's smallest k: this many other sessions make the day's cells shown


def _retract(seq: int, session_id: str, room: str = "r1") -> bytes:
    body = Retract(
        kind="retract",
        message_id=str(uuid.uuid4()),
        seq=seq,
        site="north",
        room=room,
        device_id="dev-r1",
        session_id=session_id,
    )
    return body.model_dump_json().encode()


def _event(seq: int, session_id: str) -> bytes:
    body = Event(
        kind="disparity",
        message_id=str(uuid.uuid4()),
        seq=seq,
        site="north",
        room="r1",
        device_id="dev-r1",
        session_id=session_id,
        start_s=10.0,
        end_s=20.0,
        peak=0.8,
        mean=0.6,
        windows=4,
        first="face",
        second="voice",
    )
    return body.model_dump_json().encode()


def _summary(seq: int, session_id: str, day: str) -> tuple[str, bytes]:
    return f"{BASE}/summary", summary("north", "r1", "dev-r1", seq, session_id, day).model_dump_json().encode()


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, object]]:
    with engine.begin() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def test_a_retraction_drops_what_is_unreleased_and_unlinks_what_was_released(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    ingest = Ingest(engine, HubMetrics())
    withdrawn, others = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(K)]
    first = [_summary(1, withdrawn, OLD_DAY), _summary(2, withdrawn, OLD_DAY)]
    first += [_summary(3 + i, other, OLD_DAY) for i, other in enumerate(others)]
    seq = 3 + K
    outcomes = ingest.store_batch([*first, (f"{BASE}/event", _event(seq, withdrawn))])
    assert [o.result for o in outcomes] == ["stored"] * (K + 3)
    assert release_due(engine, policy_for(engine, "day", 2), TODAY)
    shown_before = _rows(engine, shown_cells)
    assert shown_before

    # A late summary of the withdrawn session goes into a new, open part; then the room retracts it.
    assert ingest.handle(*_summary(seq + 1, withdrawn, OLD_DAY)).result == "stored"
    assert ingest.handle(f"{BASE}/retract", _retract(seq + 2, withdrawn)).result == "stored"

    ids = {str(r["session_id"]) for r in _rows(engine, sessions)}
    assert withdrawn not in ids, "nothing at the hub is linked to the erased session any more"
    assert set(others) < ids and len(ids) == K + 1, "the released part stays, under an id of its own"
    parts = _rows(engine, sessions)
    assert len(parts) == K + 1 and all(p["sealed_in"] is not None for p in parts), "the open part was dropped"
    assert _rows(engine, shown_cells) == shown_before, "released cells never change"
    (change,) = _rows(engine, retractions)
    assert change["dropped_parts"] == 1 and change["released_parts"] == 1
    assert change["released_months"] and (change["site"], change["room"]) == ("north", "r1")
    assert withdrawn not in str(change.values()), "the record does not name the session"
    assert [r["session_hash"] for r in _rows(engine, retracted)] == [session_hash(withdrawn)]
    assert withdrawn_after_release(engine) == 1  # the overview page says released numbers still count it

    # A summary of it still on its way is refused, but keeps its place in the sequence.
    late = ingest.handle(*_summary(seq + 3, withdrawn, OLD_DAY))
    assert late.result == "invalid" and late.detail.startswith("retracted")
    (device,) = _rows(engine, devices)
    assert device["last_seq"] == seq + 3 and device["missing"] == 0, "events and retractions leave no gap"
    assert _rows(engine, gaps) == []
    assert [r["reason"].split(":")[0] for r in _rows(engine, dead_letters)] == ["retracted"]
    engine.dispose()


def test_a_session_retracted_before_release_leaves_nothing(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    ingest = Ingest(engine, HubMetrics())
    withdrawn = str(uuid.uuid4())
    day = TODAY.isoformat()
    ingest.store_batch([_summary(1, withdrawn, day), _summary(2, withdrawn, day)])
    # The retraction in the same batch as a summary still arriving: both handled, in order.
    outcomes = ingest.store_batch([_summary(3, withdrawn, day), (f"{BASE}/retract", _retract(4, withdrawn))])
    assert [o.result for o in outcomes] == ["stored", "stored"]
    assert _rows(engine, sessions) == []
    (change,) = _rows(engine, retractions)
    assert (change["dropped_parts"], change["released_parts"], change["released_months"]) == (1, 0, "")
    assert withdrawn_after_release(engine) == 0
    engine.dispose()


def test_a_room_cannot_retract_another_rooms_session(tmp_path: Path) -> None:
    engine = open_database(hub_config(tmp_path, 1883))
    ingest = Ingest(engine, HubMetrics())
    session = str(uuid.uuid4())
    ingest.handle(*_summary(1, session, TODAY.isoformat()))
    refused = ingest.handle("clinic/v1/north/r2/retract", _retract(1, session, room="r2"))
    assert refused.result == "invalid" and refused.detail.startswith("identity")
    assert len(_rows(engine, sessions)) == 1 and _rows(engine, retractions) == []
    engine.dispose()


def test_retractions_and_events_arrive_through_the_broker(tmp_path: Path) -> None:
    """The hub's real subscriber reads a room's events and retractions beside its summaries
    (real mosquitto): the session is dropped and the sequence has no gap."""
    broker = start_broker(tmp_path)
    config = hub_config(tmp_path, broker.port)
    room = HubRoom(broker.host, broker.port, "north", "r1", "dev-r1")
    try:
        with running_hub(config) as hub:
            session = room.session(TODAY.isoformat(), windows=3)
            room.publish("event", _event(4, session).decode())
            room.publish("retract", _retract(5, session).decode())
            wait_for(lambda: len(_rows(hub.ingest.engine, retractions)) == 1, what="the retraction")
            assert _rows(hub.ingest.engine, sessions) == []
            (device,) = _rows(hub.ingest.engine, devices)
            assert (device["last_seq"], device["missing"], device["summaries"]) == (5, 0, 3)
    finally:
        room.close()
        broker.stop()


def test_the_overview_says_when_released_numbers_still_count_a_withdrawn_session(tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    try:
        config = hub_config(tmp_path, broker.port, web_port=free_port(), cookie_secure=False)
        with running_hub(config, web=True) as hub:
            add_user(hub.ingest.engine, "admin", PASSWORD, "admin")
            sessions_ = [str(uuid.uuid4()) for _ in range(K + 1)]
            hub.ingest.store_batch([_summary(i + 1, s, OLD_DAY) for i, s in enumerate(sessions_)])
            assert release_due(hub.ingest.engine, policy_for(hub.ingest.engine, "day", 2), TODAY)
            client = Browserless(hub.url)
            client.post("/login", {"username": "admin", "password": PASSWORD, "csrf": client.login_token()})
            _, _, before = client.get("/")
            assert 'id="withdrawn"' not in before
            assert hub.ingest.handle(f"{BASE}/retract", _retract(K + 2, sessions_[0])).result == "stored"
            _, _, after = client.get("/")
            assert "1 session was withdrawn by their clients after a period holding it was released" in " ".join(
                after.split()
            )
    finally:
        broker.stop()
