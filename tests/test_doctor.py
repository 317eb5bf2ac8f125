"""`clinic-edge doctor`: each part of an installation checked, with real components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.speakers.staff import StaffVoice
from tests.conftest import Broker, free_port, write_config


def _doctor(cfg: Path) -> tuple[int, dict[str, dict[str, str]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "doctor", "--config", str(cfg), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    body = json.loads(proc.stdout)
    return proc.returncode, {f["name"]: f for f in body["findings"]}


def test_a_healthy_install(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    code, findings = _doctor(cfg)
    assert code == 0
    assert {n: f["status"] for n, f in findings.items()} == {
        "gstreamer": "pass",
        "source": "pass",
        "models": "pass",
        "speakers": "warn",  # no model pack with a speaker encoder: every voice is the client's
        "storage": "pass",
        "at rest": "warn",  # this machine's disk is not encrypted
        "broker": "pass",
        "clock": "pass",
        "profile": "warn",  # not calibrated yet
        "review": "warn",  # its self-signed certificate is made at the review page's first start
    }
    assert findings["profile"]["action"] == "run clinic-edge calibrate --write"


@pytest.mark.parametrize(
    ("edit", "name", "detail"),
    [
        (
            lambda t, tmp: t.replace('source = "test:"', 'source = "v4l2:///dev/video77"'),
            "source",
            "camera /dev/video77 not found",
        ),
        (lambda t, tmp: t.replace("face-fer-minixception.onnx", "nothing-here.onnx"), "models", "model file not found"),
        (lambda t, tmp: t, "broker", "unreachable"),  # the config's port has no broker behind it
    ],
)
def test_each_fault_is_named(tmp_path: Path, face_model: Path, edit: object, name: str, detail: str) -> None:
    port = free_port()  # nothing listens here
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=port)
    cfg.write_text(edit(cfg.read_text(), tmp_path))  # type: ignore[operator]
    code, findings = _doctor(cfg)
    assert code == 1
    assert findings[name]["status"] == "fail"
    assert detail in findings[name]["detail"]


def test_profile_with_failed_checks_asks_for_recalibration(tmp_path: Path, face_model: Path, broker: Broker) -> None:
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port)
    profile = {
        "created_at": "2026-01-01T10:00:00+00:00",
        "technician": "tech-1",
        "source": "test:",
        "analysis_fps": 10,
        "checks": [
            {
                "name": "exposure",
                "status": "fail",
                "value": 20,
                "unit": "grey level",
                "threshold": "70-190",
                "action": "add light",
            }
        ],
    }
    (tmp_path / "room-profile.json").write_text(json.dumps(profile))
    _, findings = _doctor(cfg)
    assert findings["profile"]["status"] == "warn"
    assert "failed checks: exposure" in findings["profile"]["detail"]


def test_speaker_attribution_is_ready_once_staff_enrol(tmp_path: Path, default_pack: Path, broker: Broker) -> None:
    state = tmp_path / "s"
    cfg = write_config(
        tmp_path / "room.toml", face_model=Path(), state_dir=state, mqtt_port=broker.port, pack=default_pack
    )
    _, findings = _doctor(cfg)
    assert findings["speakers"]["status"] == "warn"
    assert "no staff voice enrolled" in findings["speakers"]["detail"]
    assert findings["speakers"]["action"].startswith("clinic-edge staff-voice enroll")
    voice = StaffVoice(
        staff_id="t01",
        consent="hr-1",
        enrolled_at="2026-11-30T10:00:00+00:00",
        speech_s=12.0,
        encoder="speaker-ge2e",
        encoder_sha256="0" * 64,
        embedding=[1.0] + [0.0] * 255,
    )
    (state / "staff-voices").mkdir(parents=True)
    (state / "staff-voices" / "t01.json").write_text(voice.model_dump_json())
    _, findings = _doctor(cfg)
    assert findings["speakers"] == {
        "name": "speakers",
        "status": "pass",
        "detail": "1 staff voices enrolled",
        "action": "",
    }


def _block(sysfs: Path, dev: str, *, crypt: str | None = None, slaves: tuple[str, ...] = ()) -> None:
    """A device in a fake sysfs: /sys/dev/block/<dev> -> /sys/devices/.../<name>."""
    name = f"dev-{dev.replace(':', '-')}"
    node = sysfs / "devices" / "virtual" / "block" / name
    (node / "slaves").mkdir(parents=True, exist_ok=True)
    (node / "dev").write_text(dev + "\n")
    if crypt is not None:
        (node / "dm").mkdir()
        (node / "dm" / "uuid").write_text(f"{crypt}\n")
        (node / "dm" / "name").write_text(f"{name}\n")
    for slave in slaves:
        (node / "slaves" / f"dev-{slave.replace(':', '-')}").symlink_to(
            sysfs / "devices" / "virtual" / "block" / f"dev-{slave.replace(':', '-')}"
        )
    (sysfs / "dev" / "block").mkdir(parents=True, exist_ok=True)
    (sysfs / "dev" / "block" / dev).symlink_to(node)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("layout", "fs", "protected", "how"),
    [
        ({"disk": None}, "ext4", False, "not encrypted (ext4 at /)"),
        ({"disk": "CRYPT-LUKS2-1234-luks"}, "ext4", True, "on the encrypted volume dev-DISK (dm-crypt)"),
        ({"disk": "LVM-abc", "below": "CRYPT-LUKS2-99-cryptroot"}, "ext4", True, "dev-BELOW (dm-crypt)"),
        ({"disk": "LVM-abc", "below": None}, "ext4", False, "not encrypted"),
        ({"disk": None}, "tmpfs", True, "in memory only (tmpfs at /)"),
        ({"disk": None}, "ecryptfs", True, "encrypted by the file system"),
    ],
    ids=["plain disk", "LUKS", "LVM on LUKS", "LVM on a plain disk", "tmpfs", "eCryptfs"],
)
def test_encryption_at_rest_is_read_from_the_device_stack(
    tmp_path: Path, layout: dict[str, str | None], fs: str, protected: bool, how: str
) -> None:
    from edge.encryption import at_rest

    folder = tmp_path / "state"
    folder.mkdir()
    st = folder.stat()
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    sysfs = tmp_path / "sys"
    if "below" in layout:
        _block(sysfs, "250:9", crypt=layout["below"])
        _block(sysfs, dev, crypt=layout["disk"], slaves=("250:9",))
    else:
        _block(sysfs, dev, crypt=layout["disk"])
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/x / {fs} rw 0 0\n")
    found = at_rest(folder, sysfs=sysfs, mounts=mounts)
    name_disk, name_below = f"dev-{dev.replace(':', '-')}", "dev-250-9"
    assert found.protected is protected
    assert (
        how.replace("DISK", name_disk.removeprefix("dev-")).replace("BELOW", name_below.removeprefix("dev-"))
        in found.how
    )
