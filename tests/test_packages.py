"""The Debian packages (scripts/build-packages.sh): built from this checkout, installed on this machine,
checked (files, system users, units verified and hardened, the installed `clinic-edge doctor` and a
session on the demo clip with the installed binary, the hub's installed command), removed (data kept)
and purged (data gone), leaving the machine as it was.

Marked `package`: it installs system packages, so it runs only where that is wanted (`-m package`,
as root, on a machine without a clinic-edge installation of its own); it is skipped otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CONSENT_ARGS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clinic-edge", "clinic-hub")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")

pytestmark = pytest.mark.package


def _installed(name: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
    return "install ok installed" in out.stdout or "config-files" in out.stdout


def _run(*cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=1800, **kw)  # type: ignore[call-overload]


def _for_this_machine(text: str, source: str, *, mqtt_port: int | None, state: Path | None = None) -> str:
    """The packaged room.toml set for this machine: ``source`` in real time, the broker on loopback
    without TLS (or MQTT off), metrics off, and ``state`` as the state folder when given."""
    text = text.replace('source = "v4l2:///dev/video0"', f'source = "{source}"')
    text = text.replace("realtime_files = false", "realtime_files = true")
    text = re.sub(r"\[mqtt\.tls\]\n(?:(?!\[).*\n)*", "", text)  # the example's certificates are not here
    text = re.sub(r"(\[metrics\]\n(?:#.*\n)*)enabled = true", r"\1enabled = false", text)
    if mqtt_port is None:
        text = re.sub(r"(\[mqtt\]\n(?:#.*\n)*)enabled = true", r"\1enabled = false", text)
    else:
        text = text.replace('host = "broker.clinic.lan"', 'host = "127.0.0.1"').replace(
            "port = 8883", f"port = {mqtt_port}"
        )
    if state is not None:
        text = re.sub(r'state_dir = "[^"]*"', f'state_dir = "{state}"', text)
    return text


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if os.geteuid() != 0 or shutil.which("dpkg-deb") is None:
        pytest.skip("installing packages needs root and dpkg-deb")
    busy = [p for p in ("/opt/clinic-edge", "/opt/clinic-hub") if Path(p).exists()]
    busy += [n for n in PACKAGES if _installed(n)]
    if busy or any(Path("/var/lib/clinic-edge").glob("*.db")):
        pytest.skip(f"this machine has a clinic-edge installation of its own ({busy or '/var/lib/clinic-edge'})")
    given = os.environ.get("CLINIC_TEST_DEBS")  # packages built from this checkout before, to iterate faster
    out = Path(given) if given else tmp_path_factory.mktemp("debs")
    if not given:
        built = _run(str(ROOT / "scripts" / "build-packages.sh"), "--out", str(out))
        assert built.returncode == 0, built.stderr[-3000:]
    found = {n: next(out.glob(f"{n}_*.deb")) for n in PACKAGES}
    yield found
    for name in PACKAGES:  # whatever a failed assertion left behind
        if _installed(name):
            _run("dpkg", "--purge", name)


@pytest.mark.timeout(1800)
def test_packages_install_run_and_purge(debs: dict[str, Path], tmp_path: Path, demo_clip: Path) -> None:
    info = _run("dpkg-deb", "--info", str(debs["clinic-edge"])).stdout
    assert re.search(r"Depends: .*python3-gi.*gstreamer1\.0-libav", info)
    installed = _run("dpkg", "-i", str(debs["clinic-edge"]), str(debs["clinic-hub"]))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Next:" in installed.stdout and "clinic-edge doctor" in installed.stdout

    # Files, users, the conffile and the units.
    assert Path("/opt/clinic-edge/.venv/bin/clinic-edge").is_file()
    assert (Path("/opt/clinic-edge/models/pack") / "pack.json").is_file()
    assert Path("/usr/bin/clinic-edge").resolve() == Path("/opt/clinic-edge/.venv/bin/clinic-edge")
    assert "/etc/clinic-edge/room.toml" in _run("dpkg-query", "-W", "-f=${Conffiles}", "clinic-edge").stdout
    for user in PACKAGES:
        assert _run("getent", "passwd", user).returncode == 0
    assert (Path("/var/lib/clinic-edge").stat().st_mode & 0o777) == 0o700
    for unit in (
        "clinic-edge.service",
        "clinic-edge-review.service",
        "clinic-edge-setup.service",
        "clinic-edge-backup.service",
        "clinic-hub.service",
        "clinic-hub-backup.service",
    ):
        path = Path("/lib/systemd/system") / unit
        verify = _run("systemd-analyze", "verify", str(path))
        assert verify.returncode == 0 and verify.stderr.strip() == "", (unit, verify.stderr)
        security = _run("systemd-analyze", "security", "--offline=true", str(path)).stdout
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security)
        assert match and float(match.group(1)) <= 2.0, (unit, security[-500:])
    assert _run("systemctl", "is-enabled", "clinic-edge.service").stdout.strip() != "enabled"  # not started

    # The installed binary: doctor on a room that reads the packaged model pack, then a session.
    state = tmp_path / "state"
    config = tmp_path / "room.toml"
    text = Path("/etc/clinic-edge/room.toml").read_text(encoding="utf-8")
    config.write_text(_for_this_machine(text, demo_clip.as_uri(), mqtt_port=None, state=state), encoding="utf-8")
    doctor = _run("/usr/bin/clinic-edge", "doctor", "--config", str(config))
    assert re.search(r"PASS\s+models\s+.*pack signed by key .*/etc/clinic-edge/keys/clinic-packs\.pub", doctor.stdout)
    assert re.search(r"PASS\s+gstreamer", doctor.stdout) and " FAIL " not in doctor.stdout, doctor.stdout
    run = _run("/usr/bin/clinic-edge", "run", "--config", str(config), *CONSENT_ARGS)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert re.search(r"windows:\s+13 stored", run.stdout), run.stdout
    hub = _run("/usr/bin/clinic-hub", "--help")
    assert hub.returncode == 0 and "dashboard" in hub.stdout
    # The installed hub backs up its database and restores it onto a fresh one.
    for user in PACKAGES:
        backups = Path("/var/backups") / user
        assert backups.is_dir() and backups.owner() == user and (backups.stat().st_mode & 0o777) == 0o700
    hub_toml, fresh_toml = tmp_path / "hub.toml", tmp_path / "fresh.toml"
    for toml, db in ((hub_toml, "hub.db"), (fresh_toml, "fresh.db")):
        toml.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\n[database]\nurl = "sqlite:///{tmp_path / db}"\n', encoding="utf-8"
        )
    assert _run("/usr/bin/clinic-hub", "--config", str(hub_toml), "release").returncode == 0  # makes the schema
    key = _run("/usr/bin/clinic-hub", "--config", str(hub_toml), "backup-key", "--out", str(tmp_path / "key"))
    recipient = key.stdout.split()[-1]
    out = tmp_path / "hub.clinic-backup"
    backup = _run(
        "/usr/bin/clinic-hub", "--config", str(hub_toml), "backup", "--recipient", recipient, "--out", str(out)
    )
    assert backup.returncode == 0 and out.is_file(), backup.stderr
    restore = _run(
        "/usr/bin/clinic-hub", "--config", str(fresh_toml), "restore", str(out), "--identity", str(tmp_path / "key")
    )
    assert restore.returncode == 0 and "restored" in restore.stdout, restore.stderr

    # Remove keeps the data and the configuration; purge deletes them and the users.
    marker = Path("/var/lib/clinic-edge/kept-by-remove")
    marker.write_text("x", encoding="utf-8")
    removed = _run("dpkg", "-r", *PACKAGES)
    assert removed.returncode == 0, removed.stderr
    assert not Path("/opt/clinic-edge").exists() and marker.is_file()
    assert Path("/etc/clinic-edge/room.toml").is_file()
    purged = _run("dpkg", "--purge", *PACKAGES)
    assert purged.returncode == 0, purged.stderr
    assert not Path("/var/lib/clinic-edge").exists() and not Path("/etc/clinic-edge").exists()
    for user in PACKAGES:
        assert _run("getent", "passwd", user).returncode != 0


def _bumped(deb: Path, out: Path) -> Path:
    """The same package as release N+1: its control file's version raised, repacked with dpkg-deb."""
    tree = out / "tree"
    assert _run("dpkg-deb", "-R", str(deb), str(tree)).returncode == 0
    control = tree / "DEBIAN" / "control"
    version = re.search(r"^Version: (\S+)$", control.read_text(), re.M)
    assert version
    newer = version.group(1) + ".1"
    control.write_text(control.read_text().replace(f"Version: {version.group(1)}", f"Version: {newer}"))
    bumped = out / deb.name.replace(version.group(1), newer)
    assert _run("dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "-b", str(tree), str(bumped)).returncode == 0
    return bumped


def _room_config(broker_port: int) -> None:
    """The service's source is GStreamer's test pattern, which never ends: a session lasts until it
    is stopped. Recorded sessions give the demo clip with --source."""
    path = Path("/etc/clinic-edge/room.toml")
    path.write_text(_for_this_machine(path.read_text(encoding="utf-8"), "test:", mqtt_port=broker_port))


@pytest.mark.timeout(1800)
def test_an_upgrade_waits_for_the_session_keeps_the_data_and_a_downgrade_too_far_is_refused(
    debs: dict[str, Path], tmp_path: Path, demo_clip: Path
) -> None:
    from tests.conftest import collect, free_port, start_broker

    newer = _bumped(debs["clinic-edge"], tmp_path)
    assert _run("dpkg", "-i", str(debs["clinic-edge"])).returncode == 0
    try:
        port = free_port()
        _room_config(port)
        edge = "/usr/bin/clinic-edge"
        config = "/etc/clinic-edge/room.toml"
        # Release N records a session with the broker down: its summaries wait in the outbox.
        clip = ("--source", demo_clip.as_uri())
        first = _run(edge, "run", "--config", config, *clip, *CONSENT_ARGS)
        assert first.returncode == 0 and "waiting in the outbox" in first.stdout, first.stdout + first.stderr
        speech = tmp_path / "staff.wav"  # a recorded man reading (Debian's pocketsphinx-testdata)
        with wave.open(str(speech), "wb") as out:
            for i, part in enumerate(sorted(LIBRIVOX.glob("*.wav"))):
                with wave.open(str(part), "rb") as src:
                    if i == 0:
                        out.setparams(src.getparams())
                    out.writeframes(src.readframes(src.getnframes()))
        enrol = ("staff-voice", "enroll", "--config", config, "--staff-id", "dr.kept", "--consent", "hr-1")
        enrolled = _run(edge, *enrol, "--audio", str(speech))
        assert enrolled.returncode == 0, enrolled.stderr
        voices = Path("/var/lib/clinic-edge/staff-voices")
        kept = (voices / "dr.kept.json").read_text(encoding="utf-8")
        db = Path("/var/lib/clinic-edge/clinic-edge.db")
        before = _run(
            "python3",
            "-c",
            f"import sqlite3; c = sqlite3.connect('{db}'); "
            "print(c.execute('SELECT COUNT(*) FROM outbox').fetchone()[0])",
        ).stdout.strip()
        assert int(before) > 0

        # A second session is running in the service when N+1 is installed: the upgrade waits for it.
        serve = subprocess.Popen(
            [edge, "serve", "--config", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert serve.stdout is not None
            line = serve.stdout.readline()
            while line and "control socket at" not in line:  # the service is up and takes commands
                line = serve.stdout.readline()
            logged: list[str] = []
            drain = threading.Thread(target=lambda: logged.extend(serve.stdout), daemon=True)  # never fills the pipe
            drain.start()
            started = _run(edge, "control", "--config", config, "start", *CONSENT_ARGS)
            assert "result=ok" in started.stdout, started.stdout + started.stderr
            while "session state: recording" not in "".join(logged):  # the broker is down: 5 s to connect
                assert serve.poll() is None and drain.is_alive(), "".join(logged)
                drain.join(timeout=0.2)
            upgrade = subprocess.Popen(
                ["dpkg", "-i", str(newer)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert upgrade.stdout is not None
            said = [upgrade.stdout.readline()]
            while said[-1] and "waiting for the session" not in said[-1]:
                said.append(upgrade.stdout.readline())
            assert "waiting for the session in progress to end" in said[-1], (
                "".join(said)
                + _run(edge, "control", "--config", config, "status").stdout
                + str(serve.poll())
                + "".join(logged[-15:])
            )
            assert upgrade.poll() is None  # still waiting while the session records
            assert "state=recording" in _run(edge, "control", "--config", config, "status").stdout
            assert _run(edge, "control", "--config", config, "stop").returncode == 0
            rest = upgrade.communicate(timeout=600)[0]
            assert upgrade.returncode == 0, rest
        finally:
            serve.terminate()
            serve.communicate(timeout=60)
        shown = _run("dpkg-query", "-W", "-f=${Version}", "clinic-edge").stdout
        assert shown.endswith(".1")
        sessions = _run(
            "python3",
            "-c",
            f"import sqlite3; c = sqlite3.connect('{db}'); "
            "print(c.execute('SELECT COUNT(*) FROM sessions WHERE ended_at IS NOT NULL').fetchone()[0])",
        )
        assert sessions.stdout.strip() == "2"
        assert (voices / "dr.kept.json").read_text(encoding="utf-8") == kept

        # N+1 sends what N left in the outbox once the broker is there.
        broker = start_broker(tmp_path, port)
        col = collect(broker.host, broker.port)
        try:
            drained = _run(edge, "run", "--config", config, *clip, *CONSENT_ARGS)
            assert drained.returncode == 0, drained.stdout + drained.stderr
            windows = _run(
                "python3",
                "-c",
                f"import sqlite3; c = sqlite3.connect('{db}'); "
                "print(c.execute('SELECT COUNT(*) FROM windows').fetchone()[0])",
            ).stdout
            col.wait_for("summary", int(windows), timeout=120)  # every window of the three sessions
        finally:
            col.close()
            broker.stop()

        # A database written by a newer release than N+1 reads: installing N+1 again is refused.
        conn = _run(
            "python3",
            "-c",
            f"import sqlite3; c = sqlite3.connect('{db}'); "
            'c.execute("INSERT INTO schema_migrations (version, applied_at) '
            "SELECT MAX(version) + 1, 'later' FROM schema_migrations\"); c.commit()",
        )
        assert conn.returncode == 0, conn.stderr
        refused = _run("dpkg", "-i", str(debs["clinic-edge"]))
        assert refused.returncode != 0 and "Refused, nothing changed" in refused.stderr + refused.stdout
        assert _run("dpkg-query", "-W", "-f=${Version}", "clinic-edge").stdout.endswith(".1")
    finally:
        _run("dpkg", "--purge", "clinic-edge")
    assert not Path("/var/lib/clinic-edge").exists()
