"""SIGKILL at any moment loses no committed summary and never corrupts the database."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CONSENT_ARGS, write_config

WRITE_DEADLINE_S = 240.0  # a bound for a hung run only; the trials wait for a committed window


def _committed(db: Path) -> dict[int, str]:
    """seq -> message_id of every outbox row a reader can see (i.e. committed)."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return dict(conn.execute("SELECT seq, message_id FROM outbox"))
    except sqlite3.OperationalError:  # schema not created yet
        return {}
    finally:
        conn.close()


def _trials(tmp_path: Path, face_model: Path, count: int) -> tuple[int, int]:
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=state, mqtt_port=None)
    # window summaries go to the outbox even without a broker
    cfg.write_text(
        cfg.read_text().replace(
            "[mqtt]\nenabled = false\n", '[mqtt]\nhost = "127.0.0.1"\nport = 9\nconnect_timeout_s = 0.5\n'
        )
    )
    db = state / "clinic-edge.db"
    rng = random.Random(7)
    seen: dict[int, str] = {}
    kills = 0
    for _ in range(count):
        before = len(_committed(db))
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", *CONSENT_ARGS, "--config", str(cfg), "--source", "test:"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = threading.Event()
        grew = threading.Event()

        def watch(stop: threading.Event = stop, grew: threading.Event = grew, before: int = before) -> None:
            # a concurrent reader records what is committed while the writer runs
            while not stop.is_set():
                committed = _committed(db)
                seen.update(committed)
                if len(committed) > before:
                    grew.set()
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        # Kill once this run has committed a window (the event, however slow the machine), then at a
        # random moment within the next second, while further windows are being written.
        committed_one = grew.wait(timeout=WRITE_DEADLINE_S)
        if committed_one:
            time.sleep(rng.uniform(0.0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        watcher.join()
        assert committed_one, f"run {kills + 1} committed no window within {WRITE_DEADLINE_S} s"
        kills += 1
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        after = _committed(db)
        missing = {seq for seq in seen if after.get(seq) != seen[seq]}
        assert not missing, f"committed summaries lost after kill {kills}: {sorted(missing)}"
        assert sorted(after) == list(range(1, len(after) + 1)), "sequence has gaps"
        if kills % 50 == 0:
            print(f"SIGKILL trials so far: {kills}, committed summaries watched: {len(seen)}, lost: 0", flush=True)
    # Every start closed the sessions the kills before it left open: only the last kill's remains.
    conn = sqlite3.connect(db)
    open_sessions = conn.execute("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL").fetchone()[0]
    by = dict(conn.execute("SELECT COALESCE(ended_by, 'open'), COUNT(*) FROM sessions GROUP BY 1").fetchall())
    conn.close()
    assert open_sessions <= 1 and by.get("crash", 0) >= kills - 1, by
    print(f"SIGKILL trials: {kills}, committed summaries watched: {len(seen)}, lost: 0")
    return kills, len(seen)


def test_sigkill_during_writes(tmp_path: Path, face_model: Path) -> None:
    kills, summaries = _trials(tmp_path, face_model, 5)
    assert kills == 5
    assert summaries >= 5  # the trials did catch writes in progress


@pytest.mark.slow
def test_sigkill_during_writes_many_times(tmp_path: Path, face_model: Path) -> None:
    kills, summaries = _trials(tmp_path, face_model, 40)
    assert kills == 40
    assert summaries >= 40


@pytest.mark.soak
@pytest.mark.timeout(48 * 3600)  # hours by design; a hung run is still bounded
def test_sigkill_soak(tmp_path: Path, face_model: Path) -> None:
    """CLINIC_SOAK_KILLS (1,000 by default) kills, each after a committed write."""
    count = int(os.environ.get("CLINIC_SOAK_KILLS", "1000"))
    kills, summaries = _trials(tmp_path, face_model, count)
    assert kills == count and summaries >= count
