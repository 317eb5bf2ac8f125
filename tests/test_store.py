"""The local SQLite database: migrations, atomic window + outbox writes, outbox order."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge.errors import StoreError
from edge.results import FaceChannel, Utterance, VoiceChannel, WindowResult
from edge.store import SCHEMA_VERSION, SessionRunningError, Store
from edge.store import migrations as mig
from tests.conftest import CONSENT

PROBS = (0.1, 0.0, 0.6, 0.1, 0.1, 0.05, 0.0, 0.05)


def _utterance(text: str, start_s: float) -> Utterance:
    return Utterance(
        start_s, start_s + 2.0, text, PROBS, "happy", 0.6, tuple((w, 0.1) for w in text.split()), 90.0, 12.0
    )


def _result(session: str, index: int, transcript: tuple[Utterance, ...] = ()) -> WindowResult:
    probs = PROBS
    return WindowResult(
        session_id=session,
        index=index,
        start_s=float(index),
        end_s=index + 2.5,
        started_at="2026-01-01T00:00:00.000+00:00",
        probs=probs,
        label="happy",
        confidence=0.6,
        channels={"face": FaceChannel(25, 1.0, 1, 0.9, probs), "voice": VoiceChannel(0.5, -30.0, -60.0, 0.0)},
        flags=("silence",),
        transcript=transcript,
    )


def _session(store: Store) -> str:
    return store.start_session(
        site="s",
        room="r",
        device_id="d",
        source_kind="test",
        backend="onnxruntime-cpu",
        model_sha256="0" * 64,
        consent=CONSENT,
    )


def test_new_database_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "db.sqlite")
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {"sessions", "windows", "outbox", "schema_migrations"} <= set(store.db.table_names())
    store.close()
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_migrations_run_once(tmp_path: Path) -> None:
    Store(tmp_path / "db").close()
    store = Store(tmp_path / "db")
    assert store.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(mig.MIGRATIONS)
    store.close()


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: object) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")  # type: ignore[attr-defined]
        raise sqlite3.OperationalError("simulated failure")

    broken_version = SCHEMA_VERSION + 1
    monkeypatch.setattr(mig, "MIGRATIONS", (*mig.MIGRATIONS, (broken_version, broken)))
    monkeypatch.setattr(mig, "SCHEMA_VERSION", broken_version)
    with pytest.raises(
        StoreError, match=rf"migration to version {broken_version} failed and was rolled back: simulated failure"
    ):
        Store(tmp_path / "db")
    conn = sqlite3.connect(tmp_path / "db")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION


def test_newer_database_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "db").close()
    conn = sqlite3.connect(tmp_path / "db")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future')")
    conn.commit()
    with pytest.raises(StoreError, match=r"schema version 99 is newer than this software's"):
        Store(tmp_path / "db")


def test_corrupt_database_is_reported(tmp_path: Path) -> None:
    (tmp_path / "db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"is unusable"):
        Store(tmp_path / "db")


def test_window_and_summary_are_one_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    session = _session(store)

    def failing_summary(seq: int, message_id: str) -> tuple[str, str]:
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(StoreError, match=r"cannot store window 0 .*disk is full"):
        store.add_window(_result(session, 0), failing_summary)
    assert store.db.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 0
    seq = store.add_window(_result(session, 0), lambda seq, mid: ("t/summary", f'{{"seq": {seq}, "id": "{mid}"}}'))
    assert seq == 1
    assert store.db.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 1
    (row,) = store.pending(10)
    assert row.payload == f'{{"seq": 1, "id": "{row.message_id}"}}'


def test_outbox_is_sent_oldest_first_and_marked(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    session = _session(store)
    for i in range(5):
        store.add_window(_result(session, i), lambda seq, mid: ("t", str(seq)))
    assert [r.seq for r in store.pending(3)] == [1, 2, 3]
    store.mark_sent(1)
    store.mark_sent(3)
    assert [r.seq for r in store.pending(10)] == [2, 4, 5]
    assert store.pending_count() == 3
    store.end_session(session, frames=100, frames_dropped=2)
    row = store.db.execute("SELECT windows, frames, frames_dropped, ended_at FROM sessions").fetchone()
    assert row[:3] == (5, 100, 2) and row[3]


def test_sequence_continues_across_restarts(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    session = _session(store)
    store.add_window(_result(session, 0), lambda seq, mid: ("t", "x"))
    store.close()
    store = Store(tmp_path / "db")
    assert store.add_window(_result(session, 1), lambda seq, mid: ("t", "x")) == 2


def test_retention_purges_old_sessions_and_published_summaries_securely(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    assert store.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    old, recent = _session(store), _session(store)
    for i in range(3):
        spoken = (_utterance(f"old words {i}", i),)
        store.add_window(_result(old, i, spoken), lambda seq, mid: ("t", "old"), store_transcript=True)
        store.add_window(_result(recent, i), lambda seq, mid: ("t", "recent"))
    store.add_transcripts(recent, [_utterance("recent words", 9.0)])
    store.end_session(old, frames=1, frames_dropped=0)
    store.end_session(recent, frames=1, frames_dropped=0)
    long_ago = "2020-01-01T00:00:00.000+00:00"
    conn = store.db.conn
    conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", [long_ago, old])
    conn.execute("UPDATE outbox SET created_at = ? WHERE payload = 'old'", [long_ago])
    for seq in (1, 3):  # two of the old summaries were published, one was not
        store.mark_sent(seq)
    counts = store.purge(datetime(2021, 1, 1, tzinfo=timezone.utc))
    assert counts == {"sessions": 1, "windows": 3, "transcripts": 3, "events": 0, "outbox": 2, "reports": 0}
    assert [r[0] for r in conn.execute("SELECT text FROM transcripts")] == ["recent words"]
    assert [r[0] for r in conn.execute("SELECT DISTINCT session_id FROM windows")] == [recent]
    assert [r.seq for r in store.pending(10) if r.payload == "old"] == [5]  # unpublished: kept


@pytest.mark.parametrize("store_transcript", [False, True])
def test_transcripts_are_stored_only_when_asked(tmp_path: Path, store_transcript: bool) -> None:
    store = Store(tmp_path / "db")
    session = _session(store)
    spoken = (_utterance("I feel much better today", 1.0),)
    store.add_window(_result(session, 0, spoken), lambda seq, mid: ("t", "{}"), store_transcript=store_transcript)
    rows = store.db.execute("SELECT text, label, importance FROM transcripts").fetchall()
    if store_transcript:
        assert rows == [("I feel much better today", "happy", json.dumps([[w, 0.1] for w in spoken[0].text.split()]))]
    else:
        assert rows == []
    raw = (tmp_path / "db").read_bytes() + b"".join(f.read_bytes() for f in tmp_path.glob("db-*"))
    assert (b"much better" in raw) == store_transcript


def test_purged_text_is_gone_from_the_database_its_wal_and_shm(tmp_path: Path) -> None:
    """After a purge no byte of a purged transcript or consent reference is left in any of the
    database's files, though another connection (the publisher's) stays open."""
    path = tmp_path / "state" / "clinic-edge.db"
    store = Store(path)
    reader = Store(path, migrate_schema=False)  # as the publisher thread holds one
    reader.pending(10)
    secret_text, secret_ref = "violet umbrella confession", "consent-ref-7f3a9e"
    session = store.start_session(
        site="s",
        room="r",
        device_id="d",
        source_kind="test",
        backend="onnxruntime-cpu",
        model_sha256="0" * 64,
        consent=CONSENT.__class__(method="written", recorded_by="staff-test", reference=secret_ref),
    )
    for i in range(3):
        spoken = (_utterance(f"{secret_text} {i}", i),)
        store.add_window(_result(session, i, spoken), lambda seq, mid: ("t", "x"), store_transcript=True)
    store.end_session(session, frames=1, frames_dropped=0)

    def leftovers() -> list[str]:
        found = []
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            data = f.read_bytes() if f.exists() else b""
            found += [f"{f.name}: {s}" for s in (secret_text, secret_ref) if s.encode() in data]
        return found

    assert leftovers()  # the scan sees them before the purge
    counts = store.purge(datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert counts["transcripts"] == 3 and counts["sessions"] == 1
    assert leftovers() == []
    assert path.with_name(path.name + "-wal").stat().st_size == 0  # truncated
    reader.close()
    store.close()


def test_the_sequence_never_goes_back_after_a_full_purge_and_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    session = _session(store)
    seqs = [store.add_window(_result(session, i), lambda seq, mid: ("t", "x")) for i in range(3)]
    assert seqs == [1, 2, 3]
    for seq in seqs:
        store.mark_sent(seq)
    store.end_session(session, frames=1, frames_dropped=0)
    counts = store.purge(datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert counts["outbox"] == 3 and store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    store.close()
    store = Store(tmp_path / "db")
    assert store.add_window(_result(_session(store), 0), lambda seq, mid: ("t", "x")) == 4


def test_sessions_left_open_by_a_crash_are_closed_at_their_last_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    crashed, empty, running = _session(store), _session(store), _session(store)
    for i in range(3):
        store.add_window(_result(crashed, i), lambda seq, mid: ("t", "x"))
    last = store.db.execute("SELECT MAX(created_at) FROM windows WHERE session_id = ?", [crashed]).fetchone()[0]
    store.end_session(running, frames=1, frames_dropped=0)
    store.close()
    store = Store(tmp_path / "db")  # the next start
    assert sorted(store.close_abandoned()) == sorted([crashed, empty])
    rows = {
        r[0]: r[1:]
        for r in store.db.execute("SELECT id, ended_at, ended_by, windows, started_at FROM sessions").fetchall()
    }
    assert rows[crashed][:3] == (last, "crash", 3)
    assert rows[empty][0] == rows[empty][3] and rows[empty][1] == "crash"  # no window: ended as it started
    assert rows[running][1] == "stop"
    assert store.close_abandoned() == []
    # Retention now reaches them like any ended session; a session still running is never purged.
    store.db.conn.execute("UPDATE sessions SET ended_at = NULL, started_at = '2020-01-01T00:00:00.000+00:00'")
    counts = store.purge(datetime(2021, 1, 1, tzinfo=timezone.utc), keep=running)
    assert counts["sessions"] == 2 and [r[0] for r in store.db.execute("SELECT id FROM sessions")] == [running]


def test_erasure_leaves_no_byte_of_the_session_and_queues_its_retraction(tmp_path: Path) -> None:
    """Erasing one session on request: its rows, every outbox row that carries it and its report
    files are gone from the database, its WAL and shm (another connection open, as the publisher's);
    the other session is untouched; the retraction takes the next sequence number."""
    path = tmp_path / "state" / "clinic-edge.db"
    store = Store(path)
    reader = Store(path, migrate_schema=False)
    reader.pending(10)
    secret_text, secret_ref = "violet umbrella confession", "consent-ref-7f3a9e"
    erased = store.start_session(
        site="s",
        room="r",
        device_id="d",
        source_kind="test",
        backend="onnxruntime-cpu",
        model_sha256="0" * 64,
        consent=CONSENT.__class__(method="written", recorded_by="staff-test", reference=secret_ref),
    )
    kept = _session(store)
    for session in (erased, kept):
        for i in range(3):
            spoken = (_utterance(f"{secret_text} {i}", i),) if session == erased else ()
            store.add_window(
                _result(session, i, spoken),
                lambda seq, mid, s=session: ("t", json.dumps({"session_id": s, "seq": seq})),
                store_transcript=True,
            )
        store.end_session(session, frames=1, frames_dropped=0)
    report = tmp_path / "state" / "reports" / f"report-{erased}.html"
    report.parent.mkdir()
    report.write_text(secret_text, encoding="utf-8")
    store.add_report(erased, report)
    last = max(r.seq for r in store.pending(100))

    result = store.erase(erased, lambda seq, mid: ("t/retract", json.dumps({"session_id": erased, "seq": seq})))
    assert result.counts == {
        "windows": 3,
        "transcripts": 3,
        "events": 0,
        "judgements": 0,
        "outbox": 3,
        "sessions": 1,
        "reports": 1,
    }
    assert result.checkpointed and not report.exists()
    pending = store.pending(100)
    assert [json.loads(r.payload)["session_id"] for r in pending] == [kept] * 3 + [erased]
    assert pending[-1].topic == "t/retract" and pending[-1].seq == last + 1
    assert [r.id for r in store.sessions()] == [kept]
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        data = f.read_bytes() if f.exists() else b""
        assert secret_text.encode() not in data and secret_ref.encode() not in data, f.name
    with pytest.raises(StoreError, match=f"no session {erased}"):
        store.erase(erased)
    running = _session(store)
    with pytest.raises(SessionRunningError, match="still recording: stop it first"):
        store.erase(running)
    assert running in [r.id for r in store.sessions()], "a refused erasure changes nothing"
    reader.close()
    store.close()


JUDGEMENTS = [
    ({"kind": "window", "verdict": "other", "window_index": 0, "label": "sad"}, None),
    ({"kind": "window", "verdict": "agree", "window_index": 1}, None),
    ({"kind": "moment", "verdict": "other", "start_s": 1.0, "end_s": 4.0, "label": "angry"}, None),
    ({"kind": "session", "verdict": "rating", "rating": 4}, None),
    ({"kind": "window", "verdict": "other", "window_index": 0, "label": "joyful"}, "is not one of"),
    ({"kind": "window", "verdict": "agree"}, "names the window"),
    ({"kind": "moment", "verdict": "other", "start_s": 4.0, "end_s": 1.0, "label": "sad"}, "names its span"),
    ({"kind": "session", "verdict": "rating", "rating": 9}, "rated 1 to 5"),
    ({"kind": "window", "verdict": "rating", "window_index": 0, "rating": 3}, "only a session is rated"),
]


@pytest.mark.parametrize(("fields", "problem"), JUDGEMENTS)
def test_a_judgement_is_kept_beside_its_session_and_erased_with_it(
    tmp_path: Path, fields: dict[str, object], problem: str | None
) -> None:
    from edge.store.judgements import Judgement, add_judgement, judgements

    store = Store(tmp_path / "state" / "db.sqlite")
    session = _session(store)
    store.add_window(_result(session, 0), lambda seq, mid: ("t", json.dumps({"session_id": session, "seq": seq})))
    store.end_session(session, frames=1, frames_dropped=0)
    judgement = Judgement(session_id=session, judged_by="staff-17", **fields)  # type: ignore[arg-type]
    if problem is not None:
        with pytest.raises(StoreError, match=problem):
            add_judgement(store, judgement)
        assert judgements(store) == []
        return
    add_judgement(store, judgement)
    (kept,) = judgements(store, session)
    assert (kept.kind, kept.verdict, kept.label, kept.judged_by) == (
        fields["kind"],
        fields["verdict"],
        fields.get("label"),
        "staff-17",
    )
    erased = store.erase(session)
    assert erased.counts["judgements"] == 1 and judgements(store) == []
    with pytest.raises(StoreError, match="no session"):
        add_judgement(store, judgement)  # nothing is judged of a session that is gone
    store.close()


def test_an_erasure_migrates_a_database_the_room_has_not_opened_since_an_upgrade(tmp_path: Path) -> None:
    """A room's database at schema 7 (before report removals and judgements): the shell's or the page's
    erasure brings it up to date and erases, instead of failing on a table it does not have."""
    from edge.config import load_config
    from edge.review.erasure import erase_session
    from edge.store import SCHEMA_VERSION
    from tests.conftest import write_config

    config = load_config(
        write_config(tmp_path / "room.toml", face_model=tmp_path / "m.onnx", state_dir=tmp_path / "s", mqtt_port=None)
    )
    path = config.storage.state_dir / config.storage.database
    store = Store(path)
    session = _session(store)
    store.end_session(session, frames=0, frames_dropped=0)
    store.close()
    old = sqlite3.connect(path)
    old.executescript(
        "DROP TABLE judgements; DROP TABLE removals; DELETE FROM schema_migrations WHERE version > 7; "
        "PRAGMA user_version = 7;"
    )
    old.close()
    erased = erase_session(config, session, "staff-17")
    assert erased.counts["sessions"] == 1
    check = sqlite3.connect(path)
    assert check.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    check.close()
