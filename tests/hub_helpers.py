"""Simulated rooms, a real PostgreSQL server and a running hub, for the hub's tests."""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from contract.classes import CLASSES
from contract.payload import Emotion, FaceSummary, Modalities, Probabilities, Span, Status, Summary, VoiceSummary
from hub.config import HubConfig, parse_hub_config
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.service import dashboard_server, open_database
from hub.subscriber import Subscriber
from hub.web import create_app


def summary(
    site: str,
    room: str,
    device: str,
    seq: int,
    session_id: str,
    day: str,
    *,
    label: str = "happy",
    windows: int = 1,
    message_id: str | None = None,
    empty: bool = False,
) -> Summary:
    """A valid summary whose distribution leans to ``label`` (``empty``: no emotion result, nobody seen
    or heard)."""
    probs = np.full(len(CLASSES), 0.04)
    probs[CLASSES.index(label)] = 1 - 0.04 * (len(CLASSES) - 1)
    p = Probabilities(**dict(zip(CLASSES, probs.round(4).tolist(), strict=True)))
    if empty:  # nobody seen or heard: windows without an emotion result
        emotion = Emotion(label=None, confidence=None, probs=None)
        modalities = Modalities(face=FaceSummary(coverage=0.0, max_faces=0, probs=None), voice=None)
        quality: dict[str, int] = {"no_face": windows}
    else:
        emotion = Emotion(label=label, confidence=float(probs.max().round(4)), probs=p)  # type: ignore[arg-type]
        modalities = Modalities(
            face=FaceSummary(coverage=0.8, max_faces=1, probs=p), voice=VoiceSummary(voiced_ratio=0.5, level_dbfs=-30.0)
        )
        quality = {"silence": 1} if seq % 5 == 0 else {}
    return Summary(
        kind="window" if windows == 1 else "interval",
        message_id=message_id or str(uuid.uuid4()),
        seq=seq,
        site=site,
        room=room,
        device_id=device,
        session_id=session_id,
        span=Span(
            start_s=seq * 1.0,
            end_s=seq * 1.0 + 2.5 * max(1, windows // 2),
            started_at=f"{day}T10:00:{seq % 60:02d}+00:00",
            windows=windows,
        ),
        emotion=emotion,
        modalities=modalities,
        quality=quality,  # type: ignore[arg-type]
    )


def status(device: str, state: str = "online", outbox: int | None = 0, calibrated_at: str | None = None) -> Status:
    return Status(
        state=state,  # type: ignore[arg-type]
        session="recording",
        device_id=device,
        ts=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        outbox=outbox,
        calibrated_at=calibrated_at,
    )


class Room:
    """A simulated appliance: publishes summaries and a retained status at QoS 1."""

    def __init__(self, host: str, port: int, site: str, room: str, device: str) -> None:
        self.site, self.room, self.device = site, room, device
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"sim-{device}", protocol=mqtt.MQTTv5
        )
        self.client.connect(host, port)
        self.client.loop_start()
        self.seq = 0

    def publish(self, kind: str, body: str, retain: bool = False) -> None:
        info = self.client.publish(f"clinic/v1/{self.site}/{self.room}/{kind}", body, qos=1, retain=retain)
        info.wait_for_publish(timeout=10)

    def session(self, day: str, windows: int, label: str = "happy") -> str:
        session_id = str(uuid.uuid4())
        for _ in range(windows):
            self.seq += 1
            self.publish(
                "summary",
                summary(self.site, self.room, self.device, self.seq, session_id, day, label=label).model_dump_json(),
            )
        return session_id

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_for(predicate: object, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@dataclass
class Postgres:
    url: str
    proc: subprocess.Popen[bytes]
    folder: Path


@contextmanager
def postgres(tmp: Path) -> Iterator[Postgres]:
    """A real PostgreSQL server on a free loopback port, in a throw-away cluster (Debian's postgresql)."""
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh (it installs Debian's postgresql)")
    # Outside pytest's folders, which only root may enter: the server runs as postgres when the
    # tests run as root (PostgreSQL refuses to run as root).
    folder = Path(tempfile.mkdtemp(prefix="clinic-hub-pg-"))
    data = folder / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "hub", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*run_as, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("PostgreSQL did not start")
            time.sleep(0.2)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "hub", "clinic_hub"], check=True
        )
        yield Postgres(f"postgresql+psycopg://hub@127.0.0.1:{port}/clinic_hub", proc, folder)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def hub_config(
    tmp: Path,
    broker_port: int,
    url: str | None = None,
    web_port: int = 0,
    cookie_secure: bool = True,
    **privacy: object,
) -> HubConfig:
    database: dict[str, object] = {"url": url or f"sqlite:///{tmp / 'hub.db'}"}
    if url is not None and url.startswith("postgresql"):  # the dashboard's own log-in role
        secret = tmp / "dashboard-password"
        secret.write_text("dashboard-password-for-tests\n", encoding="utf-8")
        database["dashboard_password_file"] = str(secret)
    data = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port},
        "database": database,
        "web": {"port": web_port or 8080, "cookie_secure": cookie_secure},
        "metrics": {"port": 0},
        "privacy": privacy,
        "client_id": f"hub-{uuid.uuid4().hex[:8]}",
        "max_age_days": 3650,  # the tests' sessions have fixed dates
    }
    return parse_hub_config(data, tmp)


@dataclass
class RunningHub:
    config: HubConfig
    ingest: Ingest
    subscriber: Subscriber
    url: str
    app: FastAPI | None = None

    def stop(self) -> None:
        self.subscriber.stop()


@contextmanager
def running_hub(config: HubConfig, web: bool = False) -> Iterator[RunningHub]:
    """The hub's real parts in this process: database, MQTT subscriber and (optionally) the web server."""
    engine = open_database(config)
    metrics = HubMetrics()
    ingest = Ingest.configured(engine, metrics, config)
    subscriber = Subscriber(config.mqtt, config.client_id, ingest, config.ingest)
    subscriber.start()
    server = None
    url = ""
    app = None
    if web:
        app = create_app(config, engine, metrics)
        server = uvicorn.Server(
            dashboard_server(
                config.model_copy(update={"web": config.web.model_copy(update={"host": "127.0.0.1"})}), app
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_for(lambda: server.started, what="the dashboard to start")
        url = f"http://127.0.0.1:{config.web.port}"
    wait_for(subscriber.connected.is_set, what="the hub to connect")
    try:
        yield RunningHub(config, ingest, subscriber, url, app)
    finally:
        if server is not None:
            server.should_exit = True
        subscriber.stop()
        engine.dispose()


def dump(obj: object) -> str:
    return json.dumps(obj)


class Browserless:
    """An HTTP client with a cookie jar (the sign-in flow as a form posts it)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(
        self, path: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode()
        return self._open(urllib.request.Request(self.base + path, data=data, method="POST", headers=headers or {}))

    def _open(self, request: urllib.request.Request) -> tuple[int, dict[str, str], str]:
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()

    def login_token(self) -> str:
        _, _, page = self.get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, "the log-in form carries a token"
        return found.group(1)


def cookie_jar(client: Browserless) -> http.cookiejar.CookieJar:
    for handler in client.opener.handlers:
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            return handler.cookiejar
    raise AssertionError("no cookie jar")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None
