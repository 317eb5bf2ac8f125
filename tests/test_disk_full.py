"""A real full disk under the database: the appliance stays up, reports degraded, loses nothing
that fits its retry buffer, and recovers by itself when space is back."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from edge.config import load_config
from edge.runtime import Appliance
from tests.conftest import CONSENT, Broker, collect, write_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


def _metric(appliance: Appliance, name: str) -> float:
    """One sample: ``name`` alone, or with its labels as exported (``x{reason="storage"}``)."""
    text = generate_latest(appliance.metrics.registry).decode()
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")) if "{" not in name else line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB filesystem (tmpfs) for the database, unmounted afterwards."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(state)], check=True)
    yield state
    subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def test_disk_full_then_space_again(tmp_path: Path, face_model: Path, broker: Broker, small_disk: Path) -> None:
    state = small_disk
    status = collect(broker.host, broker.port, "clinic/v1/+/+/status")
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=face_model, state_dir=state, mqtt_port=broker.port)
    )
    appliance = Appliance(config, "test:")
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(report=appliance.run(consent=CONSENT, duration_s=16.0)))
    runner.start()
    time.sleep(4.0)
    filler = _fill(state)
    deadline = time.monotonic() + 8
    while _metric(appliance, 'clinic_edge_degraded{reason="storage"}') != 1.0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _metric(appliance, 'clinic_edge_degraded{reason="storage"}') == 1.0, "a full disk must show as degraded"
    assert _metric(appliance, "clinic_edge_store_failures_total") >= 1
    time.sleep(3.0)  # windows keep coming while the disk is full
    filler.unlink()
    runner.join(timeout=60)
    report = result["report"]
    states = status.wait_for("status", 4)
    status.close()

    assert _metric(appliance, 'clinic_edge_degraded{reason="storage"}') == 0.0, "recovered by itself"
    assert report.windows_lost == 0  # type: ignore[attr-defined]
    assert report.store_failures >= 1  # type: ignore[attr-defined]
    assert any(s["degraded"] == ["storage"] for s in states)
    assert states[-1]["state"] == "stopped" and states[-1]["degraded"] == []
    # every window was stored in the end and every summary published
    assert report.windows >= 12  # type: ignore[attr-defined]
    assert report.unpublished == 0  # type: ignore[attr-defined]


def test_disk_full_windows_reach_the_database(tmp_path: Path, face_model: Path, small_disk: Path) -> None:
    """The same with the database checked afterwards: indices contiguous, integrity ok."""
    state = small_disk
    config = load_config(write_config(tmp_path / "room.toml", face_model=face_model, state_dir=state, mqtt_port=None))
    appliance = Appliance(config, "test:")
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(report=appliance.run(consent=CONSENT, duration_s=12.0)))
    runner.start()
    time.sleep(3.0)
    filler = _fill(state)
    time.sleep(4.0)
    filler.unlink()
    runner.join(timeout=60)
    conn = sqlite3.connect(state / "clinic-edge.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT idx, flags FROM windows ORDER BY idx").fetchall()
    conn.close()
    report = result["report"]
    assert report.store_failures >= 1  # type: ignore[attr-defined]
    assert [r[0] for r in rows] == list(range(len(rows)))
    assert len(rows) == report.windows  # type: ignore[attr-defined]
    assert all(isinstance(json.loads(r[1]), list) for r in rows)
