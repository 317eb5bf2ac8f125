"""Backup and restore of a room (`clinic-edge backup-key`, `backup`, `restore`): a backup taken while a
session is being recorded restores onto a fresh install, with its sessions, staff voice, room profile
and review account, retention applied at once, and the restored room records again; a wrong key, a
damaged file, a backup from a newer schema and a room that already has sessions are refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from clinic_common.backup.keys import generate
from edge.backup.archive import create_backup, restore_backup
from edge.channels.sessions import staff_dir
from edge.cli import main
from edge.config import load_config
from edge.config.models import AudioConfig, OnnxRuntimeBackendConfig
from edge.config.profile import RoomProfile, profile_path, save_profile
from edge.errors import ConfigError, StoreError
from edge.inference.engine import create_engine
from edge.inference.manifest import load_manifest
from edge.inference.pack import select_model
from edge.runtime import Appliance
from edge.speakers.encoder import SpeakerEncoder
from edge.speakers.staff import StaffVoices
from edge.store.db import Store
from edge.store.migrations import SCHEMA_VERSION
from export.speaker import speak
from tests.conftest import CONSENT, write_config

ENROL_TEXT = (
    "My name is on the door and I have worked in this clinic for some years now. Please take a seat, we can "
    "start whenever you are ready. Let us look at what we talked about last time and how the week went for you, "
    "and then we can decide together what to focus on today."
)

EDGE = (sys.executable, "-m", "edge")


@pytest.fixture(scope="module")
def encoder(default_pack: Path) -> SpeakerEncoder:
    path = select_model(default_pack, "speaker", "fp32")
    return SpeakerEncoder(create_engine(path, load_manifest(path), [OnnxRuntimeBackendConfig()]))


def _room(root: Path, face_model: Path, pack: Path, *, retention_days: int = 365, realtime: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = write_config(root / "room.toml", face_model=face_model, state_dir=root / "state", mqtt_port=None, pack=pack)
    text = path.read_text(encoding="utf-8").replace("[storage]\n", f"[storage]\nretention_days = {retention_days}\n")
    if realtime:
        text = text.replace("[capture]\n", "[capture]\nrealtime_files = true\n")
    path.write_text(text, encoding="utf-8")
    return path


def _sessions(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT s.id, COUNT(w.id) FROM sessions s LEFT JOIN windows w ON w.session_id = s.id GROUP BY s.id"
        ).fetchall()
    finally:
        conn.close()
    return {sid: int(n) for sid, n in rows}


def _account(config: Path, name: str) -> None:
    subprocess.run(
        [*EDGE, "review-account", name, "--config", str(config), "--role", "therapist", "--password-stdin"],
        input="a long enough password 42\n",
        text=True,
        check=True,
        capture_output=True,
    )


def _accounts(config: Path) -> str:
    return subprocess.run(
        [*EDGE, "review-account", "--config", str(config), "--list"], text=True, check=True, capture_output=True
    ).stdout


def test_a_backup_taken_while_recording_restores_onto_a_fresh_install(
    tmp_path: Path,
    face_model: Path,
    default_pack: Path,
    demo_clip: Path,
    encoder: object,
) -> None:
    old = tmp_path / "old"
    config = _room(old, face_model, default_pack, realtime=True)
    loaded = load_config(config)
    StaffVoices(staff_dir(loaded)).enroll("dr.demo", "hr-1", speak(ENROL_TEXT, "en-us"), encoder, AudioConfig())
    save_profile(
        RoomProfile(created_at="2026-12-01T09:00:00+00:00", technician="tech.1", source="test:", analysis_fps=10),
        profile_path(config),
    )
    _account(config, "dr.lee")
    first = Appliance(load_config(config), demo_clip.as_uri()).run(consent=CONSENT)
    db = first.database
    expired = "expired-session"
    conn = sqlite3.connect(db)
    with conn:  # a session from long ago, which the new room's retention must delete at once
        conn.execute(
            "INSERT INTO sessions (id, started_at, ended_at, room, site, device_id) "
            "SELECT ?, ?, ?, room, site, device_id FROM sessions LIMIT 1",
            [expired, (datetime.now(timezone.utc) - timedelta(days=40)).isoformat(), None],
        )
    conn.close()
    identity = tmp_path / "backup.key"
    recipient = generate(identity)
    assert identity.stat().st_mode & 0o777 == 0o600

    # The backup is taken while a second session is being recorded, once it has stored a window.
    second = Appliance(load_config(config), demo_clip.as_uri())
    stored = threading.Event()
    recorder = threading.Thread(target=lambda: second.run(consent=CONSENT))
    recorder.start()
    try:
        while recorder.is_alive() and not stored.is_set():
            counts = _sessions(db)
            if any(n > 0 for sid, n in counts.items() if sid not in (first.session_id, expired)):
                stored.set()
            else:
                recorder.join(timeout=0.05)
        assert stored.is_set(), "the second session stored no window"
        backup = tmp_path / "room.backup"
        assert main(["backup", "--config", str(config), "--out", str(backup), "--recipient", recipient]) == 0
    finally:
        recorder.join()
    assert b"dr.demo" not in backup.read_bytes() and b"SQLite format" not in backup.read_bytes()  # encrypted

    new = tmp_path / "new"
    fresh = _room(new, face_model, default_pack, retention_days=30)
    assert main(["restore", str(backup), "--config", str(fresh), "--identity", str(identity)]) == 0
    restored = _sessions(new / "state" / "clinic-edge.db")
    assert first.session_id in restored and restored[first.session_id] == _sessions(db)[first.session_id]
    assert expired not in restored  # retention applied at once
    assert len(restored) == 2  # the session being recorded, as far as it had come
    voice = staff_dir(load_config(fresh)) / "dr.demo.json"
    assert voice.read_text() == (staff_dir(loaded) / "dr.demo.json").read_text()
    assert profile_path(fresh).read_text() == profile_path(config).read_text()
    assert "dr.lee" in _accounts(fresh)

    # The restored room records again, beside what it restored.
    again = Appliance(load_config(fresh), demo_clip.as_uri()).run(consent=CONSENT)
    after = _sessions(again.database)
    assert len(after) == 3 and after[again.session_id] == again.windows > 0

    # Restoring over a room with sessions is refused; so is the wrong key.
    with pytest.raises(ConfigError, match="already holds sessions"):
        restore_backup(load_config(fresh), fresh, backup, identity)
    other = tmp_path / "other.key"
    generate(other)
    empty = _room(tmp_path / "empty", face_model, default_pack)
    with pytest.raises(ConfigError, match="cannot decrypt"):
        restore_backup(load_config(empty), empty, backup, other)


def test_a_damaged_or_newer_backup_is_refused(tmp_path: Path, face_model: Path, default_pack: Path) -> None:
    config = _room(tmp_path / "room", face_model, default_pack)
    loaded = load_config(config)
    identity = tmp_path / "k"
    recipient = generate(identity)
    with pytest.raises(StoreError, match="no database"):
        create_backup(loaded, config, tmp_path / "none.backup", recipient)
    Store(loaded.storage.state_dir / loaded.storage.database).close()  # an empty room, schema current
    folder = tmp_path / "backups"
    folder.mkdir()
    made = [create_backup(loaded, config, folder, recipient).path for _ in range(2)]
    assert made[0].name.startswith("test-site-room-a-") and made[0].suffix == ".clinic-backup"
    assert main(["backup", "--config", str(config), "--out", str(folder), "--recipient", recipient, "--keep", "1"]) == 0
    assert len(list(folder.iterdir())) == 1  # the newest kept
    good = tmp_path / "good.backup"
    create_backup(loaded, config, good, recipient)
    with pytest.raises(ConfigError, match="exists"):
        create_backup(loaded, config, good, recipient)
    with pytest.raises(ConfigError, match="not an age recipient"):
        create_backup(loaded, config, tmp_path / "x.backup", "not-a-key")
    damaged = tmp_path / "damaged.backup"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    target = _room(tmp_path / "target", face_model, default_pack)
    with pytest.raises(ConfigError, match="cannot decrypt"):
        restore_backup(load_config(target), target, damaged, identity)

    conn = sqlite3.connect(loaded.storage.state_dir / loaded.storage.database)
    with conn:  # a database a newer release migrated
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'later')", [SCHEMA_VERSION + 1])
    conn.close()
    newer = tmp_path / "newer.backup"
    create_backup(loaded, config, newer, recipient)
    with pytest.raises(ConfigError, match="newer clinic-edge"):
        restore_backup(load_config(target), target, newer, identity)
    assert not (tmp_path / "target" / "state" / "clinic-edge.db").exists()  # nothing was put in place
