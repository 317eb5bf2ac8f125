"""The service unit: statically verified by systemd-analyze, hardened to an exposure of 2.0 or better."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_config
from edge.jetson import ORIN_NODES
from edge.systemd_dropin import render_dropin
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "clinic-edge.service"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (scripts/setup.sh installs it)"
)


def _install(folder: Path, unit_text: str | None = None, dropin: str | None = None) -> Path:
    """The unit as installed, with ExecStart pointing at this checkout's entry point (verify checks it)."""
    exe = Path(sys.executable).with_name("clinic-edge")
    text = (unit_text or UNIT.read_text()).replace("/opt/clinic-edge/.venv/bin/clinic-edge", str(exe))
    unit = folder / "clinic-edge.service"
    unit.write_text(text, encoding="utf-8")
    if dropin is not None:
        (folder / "clinic-edge.service.d").mkdir()
        (folder / "clinic-edge.service.d" / "local.conf").write_text(dropin, encoding="utf-8")
    return unit


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"}  # picks up the drop-in folder
    return subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, env=env, timeout=60)


def _exposure(unit: Path) -> float:
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"}
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True, env=env, timeout=60
    )
    match = re.search(r"Overall exposure level for clinic-edge\.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(1))


def test_unit_verifies_without_any_warning(tmp_path: Path) -> None:
    proc = _verify(_install(tmp_path))
    # verify exits 0 even on unknown keys; any output at all is a finding
    assert proc.returncode == 0
    assert proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr


def test_the_check_notices_a_misspelt_key(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    proc = _verify(_install(tmp_path, broken))
    assert proc.returncode == 0  # the reason the test reads the output
    assert "Unknown key" in proc.stderr


def test_unit_exposure_is_two_or_better(tmp_path: Path) -> None:
    exposure = _exposure(_install(tmp_path))
    assert exposure <= 2.0


def test_installation_dropin(tmp_path: Path, face_model: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("clinic-ca.crt", "edge-a.crt", "edge-a.key"):
        (secrets / name).write_text("x")
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=8883)
    text = cfg.read_text().replace('host = "127.0.0.1"', 'host = "192.0.2.10"')
    text += "\n[mqtt.tls]\n" + "".join(
        f'{key} = "{secrets / name}"\n'
        for key, name in (("ca_file", "clinic-ca.crt"), ("cert_file", "edge-a.crt"), ("key_file", "edge-a.key"))
    )
    cfg.write_text(text)
    dropin = render_dropin(load_config(cfg), cfg)
    assert "IPAddressAllow=192.0.2.10" in dropin
    assert f"LoadCredential=edge-a.key:{secrets / 'edge-a.key'}" in dropin
    unit_dir = tmp_path / "unit"
    unit_dir.mkdir()
    unit = _install(unit_dir, dropin=dropin)
    proc = _verify(unit)
    assert proc.returncode == 0
    assert proc.stderr.strip() == "", proc.stderr
    assert _exposure(unit) <= 2.0


def test_credentials_are_read_from_systemd(tmp_path: Path, face_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "edge-a.key").write_text("k")
    (creds / "mqtt-password").write_text("secret\n")
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=8883)
    text = cfg.read_text().replace("[mqtt]\n", '[mqtt]\nusername = "edge-a"\npassword_file = "mqtt-password"\n')
    text += (
        '\n[mqtt.tls]\nca_file = "/etc/clinic-edge/ca.crt"\n'
        'cert_file = "/etc/clinic-edge/edge-a.crt"\nkey_file = "/etc/clinic-edge/edge-a.key"\n'
    )
    cfg.write_text(text)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = load_config(cfg)
    assert config.mqtt.password_file == creds / "mqtt-password"
    assert config.mqtt.tls is not None
    assert config.mqtt.tls.key_file == creds / "edge-a.key"  # loaded as a credential
    assert config.mqtt.tls.ca_file == Path("/etc/clinic-edge/ca.crt")  # not loaded: the path as given


UNITS = [  # the file, the name it is verified under (a template needs an instance), its program
    ("clinic-hub.service", "clinic-hub.service", "clinic-hub"),
    ("clinic-hub-ingest@.service", "clinic-hub-ingest@w0.service", "clinic-hub"),
    ("clinic-hub-dashboard.service", "clinic-hub-dashboard.service", "clinic-hub"),
    # The review page; Chromium (its PDF printer) keeps its JIT and its sandbox's namespaces.
    ("clinic-edge-review.service", "clinic-edge-review.service", "clinic-edge"),
    # The setup page: the camera and microphone, and nothing else of the devices.
    ("clinic-edge-setup.service", "clinic-edge-setup.service", "clinic-edge"),
    # The backup (run by its timer): no devices, no network, writes only the backup folder.
    ("clinic-edge-backup.service", "clinic-edge-backup.service", "clinic-edge"),
    # The hub's backup: the network (its database may be elsewhere), nothing else.
    ("clinic-hub-backup.service", "clinic-hub-backup.service", "clinic-hub"),
]


@pytest.mark.parametrize(("source", "name", "program"), UNITS)
def test_the_other_units_verify_and_are_hardened(tmp_path: Path, source: str, name: str, program: str) -> None:
    exe = Path(sys.executable).with_name(program)
    unit = tmp_path / name
    text = (ROOT / "systemd" / source).read_text(encoding="utf-8")
    unit.write_text(text.replace(f"/opt/clinic-edge/.venv/bin/{program}", str(exe)), encoding="utf-8")
    proc = _verify(unit)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"}
    out = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True, env=env, timeout=60
    ).stdout
    match = re.search(rf"Overall exposure level for {re.escape(name)}: ([0-9.]+)", out)
    assert match, out
    assert float(match.group(1)) <= 2.0


def _char_devices(dev: Path, names: list[str]) -> None:
    """A /dev of a Jetson in miniature: real character device nodes (of /dev/null's numbers)."""
    for name in names:
        path = dev / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))


ORIN_DEV = ["nvmap", "nvhost-ctrl-gpu", "nvgpu/igpu0/ctrl", "nvgpu/igpu0/as", "dri/renderD128", "nvhost-vic", "null"]


@pytest.mark.parametrize(
    ("nodes", "jetson", "expected"),
    [
        (  # on the device: exactly the nodes it has that CUDA, TensorRT and Argus use (not /dev/null)
            ORIN_DEV,
            None,
            [
                "/dev/dri/renderD128",
                "/dev/nvgpu/igpu0/as",
                "/dev/nvgpu/igpu0/ctrl",
                "/dev/nvhost-ctrl-gpu",
                "/dev/nvhost-vic",
                "/dev/nvmap",
            ],
        ),
        (["null"], None, []),  # not a Jetson: nothing added
        (["null"], True, [f"/dev/{n}" for n in ORIN_NODES]),  # --jetson away from the device: the Orin set
        (ORIN_DEV, False, []),  # --no-jetson
    ],
    ids=["orin-detected", "not-a-jetson", "forced-elsewhere", "refused"],
)
def test_the_jetson_dropin_lets_exactly_the_gpu_in_and_stays_hardened(
    tmp_path: Path, face_model: Path, nodes: list[str], jetson: bool | None, expected: list[str]
) -> None:
    dev = tmp_path / "dev"
    _char_devices(dev, nodes)
    cfg = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=None)
    dropin = render_dropin(load_config(cfg), cfg, jetson=jetson, dev=dev)
    allowed = [
        line.split("=", 1)[1].rsplit(" ", 1)[0] for line in dropin.splitlines() if line.startswith("DeviceAllow")
    ]
    assert allowed == expected
    if expected:
        assert "SupplementaryGroups=video render" in dropin and "BindPaths=-/tmp/argus_socket" in dropin
        assert "After=nvargus-daemon.service" in dropin
    unit_dir = tmp_path / "unit"
    unit_dir.mkdir()
    unit = _install(unit_dir, dropin=dropin)
    proc = _verify(unit)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    assert _exposure(unit) <= 2.0


@pytest.mark.parametrize("program", ["clinic-edge", "clinic-hub"])
def test_the_backup_timer_verifies_with_its_service(tmp_path: Path, program: str) -> None:
    exe = Path(sys.executable).with_name(program)
    service = (ROOT / "systemd" / f"{program}-backup.service").read_text(encoding="utf-8")
    (tmp_path / f"{program}-backup.service").write_text(
        service.replace(f"/opt/clinic-edge/.venv/bin/{program}", str(exe)), encoding="utf-8"
    )
    timer = tmp_path / f"{program}-backup.timer"
    timer.write_text((ROOT / "systemd" / f"{program}-backup.timer").read_text(encoding="utf-8"), encoding="utf-8")
    proc = _verify(timer)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr
    assert "[Install]" in timer.read_text() and "WantedBy=timers.target" in timer.read_text()
    broken = tmp_path / "broken" / timer.name
    broken.parent.mkdir()
    broken.write_text(timer.read_text().replace("OnCalendar=", "OnCalender="), encoding="utf-8")
    assert _verify(broken).returncode != 0 or _verify(broken).stderr.strip() != ""  # the check can fail
