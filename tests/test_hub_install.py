"""The hub installed as the example says: `clinic-hub serve` as an unprivileged user, reading a
root-owned config folder it cannot write, writing only its state folder (umask 0077, as the unit's
UMask), connected to the broker over TLS with a client certificate. The unit itself is checked by
systemd-analyze in tests/test_systemd_unit.py; this machine has no systemd to start it."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, free_port, make_pki, start_broker
from hub_helpers import Browserless, summary, wait_for

from hub.config import load_hub_config
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.service import open_database

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs the hub as another user: needs root")


@pytest.fixture
def install() -> Iterator[Path]:
    """A folder outside pytest's (which only root may enter), standing for / of the server."""
    folder = Path(tempfile.mkdtemp(prefix="clinic-hub-install-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_example_install_serves_as_its_own_user_writing_only_its_state_folder(
    tmp_path: Path, install: Path
) -> None:
    nobody = pwd.getpwnam("nobody")
    etc, state = install / "etc" / "clinic-hub", install / "var" / "lib" / "clinic-hub"
    etc.mkdir(parents=True)
    state.mkdir(parents=True, mode=0o700)
    os.chown(state, nobody.pw_uid, nobody.pw_gid)  # systemd's StateDirectory= does this for the unit
    pki = make_pki(tmp_path / "pki", ["edge-a", "hub"])
    for name, source in (("ca.crt", pki.ca), ("hub.crt", pki.cert("hub")[0]), ("hub.key", pki.cert("hub")[1])):
        shutil.copy(source, etc / name)
        os.chown(etc / name, 0, nobody.pw_gid)
        (etc / name).chmod(0o640)
    broker = start_broker(tmp_path, pki=pki)
    web_port = free_port()
    text = (ROOT / "config" / "hub.example.toml").read_text(encoding="utf-8")
    text = text.replace("/etc/clinic-hub/", f"{etc}/").replace("/var/lib/clinic-hub/", f"{state}/")
    text = text.replace('host = "broker.clinic.lan"\nport = 8883', f'host = "127.0.0.1"\nport = {broker.port}')
    text = text.replace("port = 8080", f"port = {web_port}").replace("port = 9109", "port = 0")
    assert f"{state}/hub.db" in text and f"{etc}/ca.crt" in text
    config_file = etc / "hub.toml"
    config_file.write_text(text, encoding="utf-8")
    os.chown(config_file, 0, nobody.pw_gid)
    config_file.chmod(0o640)
    etc.chmod(0o750)
    os.chown(etc, 0, nobody.pw_gid)

    exe = str(Path(sys.executable).with_name("clinic-hub"))
    as_service = {"user": nobody.pw_uid, "group": nobody.pw_gid, "umask": 0o077, "cwd": state}
    made = subprocess.run(
        [exe, "--config", str(config_file), "user", "admin", "--role", "admin", "--password-stdin"],
        input="a long enough secret\n",
        capture_output=True,
        text=True,
        timeout=120,
        **as_service,  # type: ignore[arg-type]
    )
    assert made.returncode == 0, made.stderr
    # Twelve sessions of a closed week, as the rooms would have sent them.
    engine = open_database(load_hub_config(config_file))
    ingest = Ingest(engine, HubMetrics(), max_age_days=3650)
    for seq in range(1, 13):
        body = summary("north", "r1", "edge-a", seq, str(uuid.uuid4()), "2026-10-06").model_dump_json().encode()
        assert ingest.handle("clinic/v1/north/r1/summary", body).result == "stored"
    engine.dispose()

    log = tmp_path / "hub.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [exe, "--config", str(config_file), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            **as_service,  # type: ignore[arg-type]
        )
    try:
        wait_for(lambda: "released week 2026-10-05" in log.read_text(), timeout=60, what="the first release")
        wait_for(lambda: "hub connected to 127.0.0.1" in log.read_text(), timeout=60, what="TLS to the broker")
        wait_for(lambda: "dashboard on" in log.read_text(), timeout=60, what="the dashboard")
        url = f"http://127.0.0.1:{web_port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(healthy, timeout=60, what="the dashboard to answer")
        _, headers, _ = Browserless(url).get("/login")
        assert "secure" in headers["set-cookie"].lower() and "httponly" in headers["set-cookie"].lower()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode in (0, -15), log.read_text()[-2000:]
    assert "WITHOUT TLS" not in log.read_text()
    written = {p.name: p.stat() for p in state.iterdir()}
    assert "hub.db" in written
    for name, st in written.items():
        assert st.st_uid == nobody.pw_uid, name
        assert stat.S_IMODE(st.st_mode) & 0o077 == 0, (name, oct(st.st_mode))
    assert sorted(p.name for p in etc.iterdir()) == ["ca.crt", "hub.crt", "hub.key", "hub.toml"]  # nothing written
    broker.stop()
