"""Shared fixtures: a real mosquitto on loopback, the built face model, generated media and configs."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.control import Consent
from tests.boundary import unit_boundary  # noqa: F401 - autouse: the fast loop's rule

ROOT = Path(__file__).resolve().parents[1]
# Sessions start only with consent recorded; tests record it like a clinic would.
CONSENT = Consent(method="written", recorded_by="staff-test", reference="consent-0001")
CONSENT_ARGS = ("--consent", "written", "--consent-by", "staff-test")
FACE_MODEL = ROOT / "build" / "models" / "face-fer-minixception.onnx"
DEFAULT_PACK = ROOT / "build" / "models" / "pack"
PACK_KEY = ROOT / "build" / "keys" / "pack-signing.key.pub"  # set-up signs the default pack with its key
WHISPER_GGML = ROOT / "build" / "models" / "whisper-tiny.en.ggml.bin"
DEMO_CLIP = ROOT / "build" / "demo" / "demo.mkv"
# A room that analyses and keeps everything a report can show: words with transcripts kept, every
# window explained, disparity sensitive enough for the demo clip's moments.
EVERYTHING_KEPT = (
    f'[channels.words]\nenabled = true\nmodel = "{WHISPER_GGML}"\nstore_transcript = true\n'
    '[explain]\nwhen = "every"\n[disparity]\nthreshold = 0.3\nmin_duration_s = 2.0\n'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stable_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999), for a server that is stopped and
    started again on the same port: an ephemeral port may meanwhile be handed to a client socket."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port between 20000 and 32000")


@pytest.fixture(scope="session")
def face_model() -> Path:
    if not FACE_MODEL.is_file():
        pytest.fail(f"{FACE_MODEL} is missing: run scripts/setup.sh (the README's test command does)")
    return FACE_MODEL


@pytest.fixture(scope="session")
def default_pack() -> Path:
    if not (DEFAULT_PACK / "pack.json").is_file() or not WHISPER_GGML.is_file() or not PACK_KEY.is_file():
        pytest.fail(
            f"{DEFAULT_PACK}, {PACK_KEY} or {WHISPER_GGML} is missing: run scripts/setup.sh (the README's test "
            "command does)"
        )
    from edge.config.models import ModelsConfig
    from edge.inference.pack import trust_pack

    trust_pack(ModelsConfig(pack=DEFAULT_PACK, trusted_keys=[PACK_KEY]))  # as a room does at start
    return DEFAULT_PACK


def signing_key() -> tuple[Path, Path]:
    """(private, public) key that signs the packs tests build: one per test process, whichever way
    this module was imported (``conftest`` or ``tests.conftest``)."""
    from contract.signing import generate_key

    folder = Path(tempfile.gettempdir()) / f"clinic-test-key-{os.getpid()}"
    private, public = folder / "tests.key", folder / "tests.key.pub"
    if not public.is_file():
        folder.mkdir(mode=0o700, exist_ok=True)
        generate_key(private, public)
    return private, public


def sign_pack(pack: Path) -> Path:
    """Sign a pack a test built with the tests' key, and trust it in this process; returns the pack."""
    from contract.signing import sign_file
    from edge.config.models import ModelsConfig
    from edge.inference.pack import trust_pack

    private, public = signing_key()
    sign_file(pack / "pack.json", private)
    trust_pack(ModelsConfig(pack=pack, trusted_keys=[public]))
    return pack


@pytest.fixture(scope="session")
def demo_clip() -> Path:
    if not DEMO_CLIP.is_file():
        pytest.fail(f"{DEMO_CLIP} is missing: run scripts/setup.sh (the README's test command does)")
    return DEMO_CLIP


@dataclass
class Pki:
    """A throw-away certificate authority with a broker certificate and client certificates."""

    folder: Path
    ca: Path

    def cert(self, name: str) -> tuple[Path, Path]:
        return self.folder / f"{name}.crt", self.folder / f"{name}.key"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(folder: Path, clients: list[str]) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, ca = folder / "ca.key", folder / "ca.crt"
    _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=clinic-test-ca")
    for name, san in [("broker", "subjectAltName=IP:127.0.0.1,DNS:localhost")] + [(c, "") for c in clients]:
        key, csr, crt = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
        _openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        ext = folder / f"{name}.ext"
        ext.write_text(san + "\n" if san else "basicConstraints=CA:FALSE\n", encoding="utf-8")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(crt),
            "-days",
            "2",
            "-extfile",
            str(ext),
        )
    return Pki(folder, ca)


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_broker(
    tmp: Path,
    port: int | None = None,
    *,
    pki: Pki | None = None,
    acl: str | None = None,
    persist: Path | None = None,
    extra: tuple[str, ...] = (),
) -> Broker:
    """A real mosquitto on loopback; with ``pki`` TLS-only with client certificates (CN = user)."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed: run scripts/setup.sh")
    port = port or free_port()
    conf = tmp / f"mosquitto-{port}.conf"
    lines = [f"listener {port} 127.0.0.1"]
    if persist is None:
        lines.append("persistence false")
    else:  # sessions and queued messages survive a broker restart
        persist.mkdir(parents=True, exist_ok=True)
        lines += ["persistence true", f"persistence_location {persist}/"]
    if os.geteuid() == 0:  # stay root: the test's files live in a folder only root can read
        lines.append("user root")
    if pki is None:
        lines.append("allow_anonymous true")
    else:
        crt, key = pki.cert("broker")
        lines += [
            f"cafile {pki.ca}",
            f"certfile {crt}",
            f"keyfile {key}",
            "require_certificate true",
            "use_identity_as_username true",
            "allow_anonymous false",
        ]
    if acl is not None:
        acl_file = tmp / f"acl-{port}"
        acl_file.write_text(acl, encoding="utf-8")
        lines.append(f"acl_file {acl_file}")
    lines += extra
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Broker("127.0.0.1", port, proc)
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    pytest.fail("mosquitto did not start listening within 10 s")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path)
    yield b
    b.stop()


@dataclass
class Collector:
    """A real MQTT subscriber that records every message on ``clinic/#``."""

    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: Any = None

    def json(self, suffix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/" + suffix)]

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def wait_for(self, suffix: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.json(suffix)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.json(suffix)


def collect(
    host: str,
    port: int,
    topic: str = "clinic/#",
    *,
    tls: tuple[Path, Path, Path] | None = None,
    session: str | None = None,
) -> Collector:
    """Connect a subscriber to ``topic`` and return once the subscription is acknowledged.

    ``tls`` is (CA, certificate, key) for a TLS broker. With ``session`` the subscriber keeps a
    persistent session under that client id, so the broker queues messages for it while it is
    reconnecting (e.g. across a broker restart)."""
    col = Collector()
    subscribed = threading.Event()
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id=session or ""
    )
    if tls is not None:
        client.tls_set(ca_certs=str(tls[0]), certfile=str(tls[1]), keyfile=str(tls[2]))

    def on_connect(c: Any, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        c.subscribe(topic, qos=1)

    def on_subscribe(_c: Any, _u: Any, _mid: Any, _rc: Any, _p: Any) -> None:
        subscribed.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        with col.lock:
            col.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    if session is None:
        client.connect(host, port)
    else:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        client.connect(host, port, clean_start=False, properties=props)
        client.reconnect_delay_set(0.2, 1)
    client.loop_start()
    if not subscribed.wait(10):
        pytest.fail("test subscriber could not subscribe on the broker")
    col.client = client
    return col


@pytest.fixture
def collector(broker: Broker) -> Iterator[Collector]:
    col = collect(broker.host, broker.port)
    yield col
    col.close()


def make_scene() -> ModuleType:
    """``scripts/make_scene.py`` as a module: clips of a photograph with espeak-ng speech."""
    spec = importlib.util.spec_from_file_location("make_scene", ROOT / "scripts" / "make_scene.py")
    if spec is None or spec.loader is None:
        pytest.fail("scripts/make_scene.py is missing")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return module


def write_config(
    path: Path, *, face_model: Path, state_dir: Path, mqtt_port: int | None, extra: str = "", pack: Path | None = None
) -> Path:
    """A room config for tests; with ``pack`` the models come from that model pack instead of ``face_model``."""
    keys = f'trusted_keys = ["{PACK_KEY}", "{signing_key()[1]}"]'
    models = f'pack = "{pack}"\n{keys}' if pack is not None else f'face = "{face_model}"'
    mqtt_section = (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\nconnect_timeout_s = 3\n'
        if mqtt_port is not None
        else "[mqtt]\nenabled = false\n"
    )
    path.write_text(
        f"""
[room]
site = "test-site"
room = "room-a"
device_id = "edge-test"

[capture]
source = "test:"
analysis_fps = 10
width = 320

[vision]
min_face_px = 32  # test frames are 320 px wide

[models]
{models}

[storage]
state_dir = "{state_dir}"

[metrics]
port = 0

{mqtt_section}
{extra}
""",
        encoding="utf-8",
    )
    return path


def make_clip(
    out: Path,
    *,
    seconds: float = 3.0,
    video: bool = True,
    audio: bool = True,
    pattern: str = "smpte",
    chroma: str = "Y444",
) -> Path:
    """A small Matroska file from GStreamer test sources; ``chroma`` the picture's raw format before
    H.264 (Y444: x264's 4:4:4 profile, I420: the 4:2:0 cameras send)."""
    parts = []
    n_video = int(seconds * 15)
    n_audio = int(seconds * 16000 / 1024)
    if video:
        parts.append(
            f"videotestsrc num-buffers={n_video} pattern={pattern} "
            f"! video/x-raw,format={chroma},width=320,height=240,framerate=15/1 "
            "! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux."
        )
    if audio:
        parts.append(
            f"audiotestsrc num-buffers={n_audio} samplesperbuffer=1024 wave=sine ! audio/x-raw,rate=16000,channels=1 "
            "! audioconvert ! vorbisenc ! queue ! mux."
        )
    pipeline = " ".join(parts) + f" matroskamux name=mux ! filesink location={out}"
    subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], check=True, timeout=60)
    return out


@contextlib.contextmanager
def headless_chromium(
    window: str = "1400,1000", *, downloads: Path | None = None, trust_any_certificate: bool = False
) -> Iterator[Any]:
    """Debian's Chromium driven by chromium-driver through Selenium (a real browser); with
    ``downloads`` files it downloads land there; ``trust_any_certificate`` for a test CA's server."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromium-driver are needed: run scripts/setup.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={window}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    if trust_any_certificate:
        options.add_argument("--ignore-certificate-errors")
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def serving(args: list[str], says: str) -> Iterator[tuple[str, list[str]]]:
    """``clinic-edge ARGS`` running until the block ends: the address after ``says`` in its log (once
    it says it listens) and its log lines so far."""
    proc = subprocess.Popen([sys.executable, "-m", "edge", *args], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()
    base: list[str] = []

    def read() -> None:
        if proc.stderr is None:
            return
        for line in proc.stderr:
            lines.append(line)
            if says in line:
                base.append(line.split(says, 1)[1].split()[0].rstrip("/:,"))
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(120):
            pytest.fail(f"clinic-edge {args[0]} never said it listens:\n" + "".join(lines))
        yield base[0], lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.contextmanager
def review_service(config: Path) -> Iterator[tuple[str, list[str]]]:
    """``clinic-edge review --config config`` running: the first address it says it listens on
    (loopback) and its log lines so far, once it says so; stopped afterwards."""
    with serving(["review", "--config", str(config)], "review page on ") as (base, lines):
        yield base, lines
