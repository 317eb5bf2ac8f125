"""MQTT over TLS with per-device client certificates and ACLs, against a real mosquitto."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest

from edge.config import load_config
from edge.control.commands import stamped
from edge.errors import PublishError
from edge.runtime import Appliance
from tests.conftest import CONSENT, Pki, collect, make_pki, start_broker, write_config

ACL = """
user edge-a
topic write clinic/v1/test-site/room-a/summary
topic write clinic/v1/test-site/room-a/status
topic readwrite clinic/v1/test-site/room-a/command

user room-a-control
topic write clinic/v1/test-site/room-a/command

user hub
topic read clinic/v1/#
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["edge-a", "hub", "intruder", "room-a-control"])


def _tls_config(tmp_path: Path, face_model: Path, port: int, pki: Pki, *, device: str, room: str = "room-a") -> Path:
    crt, key = pki.cert(device)
    path = write_config(tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "state", mqtt_port=port)
    text = path.read_text()
    text = text.replace('room = "room-a"', f'room = "{room}"').replace(
        'device_id = "edge-test"', f'device_id = "{device}"'
    )
    text += f'\n[mqtt.tls]\nca_file = "{pki.ca}"\ncert_file = "{crt}"\nkey_file = "{key}"\n'
    path.write_text(text)
    return path


def test_summaries_over_tls_with_a_client_certificate(tmp_path: Path, face_model: Path, pki: Pki) -> None:
    broker = start_broker(tmp_path, pki=pki, acl=ACL)
    try:
        hub = collect(broker.host, broker.port, "clinic/v1/#", tls=(pki.ca, *pki.cert("hub")))
        config = load_config(_tls_config(tmp_path, face_model, broker.port, pki, device="edge-a"))
        report = Appliance(config, "test:").run(consent=CONSENT, duration_s=4.0)
        summaries = hub.wait_for("summary", report.windows)
        hub.close()
    finally:
        broker.stop()
    assert report.windows >= 2
    assert report.unpublished == 0
    assert len(summaries) == report.windows


def test_a_room_cannot_publish_on_another_rooms_topic(tmp_path: Path, face_model: Path, pki: Pki) -> None:
    """edge-a's certificate configured for room-b: the broker refuses, the appliance counts it, says so
    and keeps every summary in the outbox."""
    broker = start_broker(tmp_path, pki=pki, acl=ACL)
    try:
        hub = collect(broker.host, broker.port, "clinic/v1/#", tls=(pki.ca, *pki.cert("hub")))
        config = load_config(_tls_config(tmp_path, face_model, broker.port, pki, device="edge-a", room="room-b"))
        appliance = Appliance(config, "test:")
        report = appliance.run(consent=CONSENT, duration_s=4.0)
        leaked = hub.json("summary")
        hub.close()
    finally:
        broker.stop()
    metrics = generate_latest(appliance.metrics.registry).decode()
    assert leaked == []
    assert report.windows >= 2
    assert report.published == 0
    assert report.unpublished == report.windows  # refused, not dropped
    refused = float(
        next(line.split()[1] for line in metrics.splitlines() if line.startswith("clinic_edge_publish_refused_total"))
    )
    assert refused >= 1


def test_an_unknown_certificate_is_rejected(tmp_path: Path, face_model: Path, pki: Pki) -> None:
    other = make_pki(tmp_path / "other-ca", ["edge-a"])  # same CN, signed by another CA
    broker = start_broker(tmp_path, pki=pki, acl=ACL)
    try:
        path = _tls_config(tmp_path, face_model, broker.port, pki, device="edge-a")
        text = path.read_text().replace(str(pki.folder / "edge-a.crt"), str(other.folder / "edge-a.crt"))
        path.write_text(text.replace(str(pki.folder / "edge-a.key"), str(other.folder / "edge-a.key")))
        text = path.read_text().replace("[mqtt]\n", "[mqtt]\nrequired_at_start = true\n")
        path.write_text(text)
        with pytest.raises(PublishError, match=rf"MQTT broker 127.0.0.1:{broker.port} is unreachable"):
            Appliance(load_config(path), "test:").run(consent=CONSENT, duration_s=2.0)
    finally:
        broker.stop()


def test_missing_tls_file_is_named(tmp_path: Path, face_model: Path, pki: Pki) -> None:
    path = _tls_config(tmp_path, face_model, 1883, pki, device="edge-a")
    path.write_text(path.read_text().replace(str(pki.ca), str(tmp_path / "nope-ca.crt")))
    with pytest.raises(PublishError, match=r"MQTT TLS file not found: .*nope-ca\.crt"):
        Appliance(load_config(path), "test:").run(consent=CONSENT, duration_s=1.0)


def _commander(broker_port: int, pki: Pki, name: str) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    crt, key = pki.cert(name)
    client.tls_set(ca_certs=str(pki.ca), certfile=str(crt), keyfile=str(key))
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    return client


def test_only_the_rooms_own_credentials_can_command_it(tmp_path: Path, face_model: Path, pki: Pki) -> None:
    broker = start_broker(tmp_path, pki=pki, acl=ACL)
    config = load_config(_tls_config(tmp_path, face_model, broker.port, pki, device="edge-a"))
    appliance = Appliance(config, "test:")
    service = threading.Thread(target=appliance.serve)
    service.start()
    topic = "clinic/v1/test-site/room-a/command"
    start = json.dumps(stamped({"command": "start", "consent": {"method": "written", "recorded_by": "staff-3"}}))
    intruder = _commander(broker.port, pki, "intruder")
    owner = _commander(broker.port, pki, "room-a-control")
    try:
        time.sleep(2.0)
        info = intruder.publish(topic, start, qos=1)
        info.wait_for_publish(5)
        time.sleep(2.0)
        assert appliance.control.state == "standby"  # the broker's ACL stopped it
        owner.publish(topic, start, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 15
        while appliance.control.state != "recording" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert appliance.control.state == "recording"
    finally:
        appliance.request_stop()
        service.join(timeout=60)
        for client in (intruder, owner):
            client.loop_stop()
            client.disconnect()
        broker.stop()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("mqtt_keys", "refused"),
    [
        ({"host": "broker.clinic.lan"}, True),  # off this machine, no TLS: refused at start
        ({"host": "10.0.0.5", "port": 1883}, True),
        ({"host": "broker.clinic.lan", "insecure": True}, False),  # a closed network, said so
        ({"host": "broker.clinic.lan", "tls": {"ca_file": "ca.crt"}}, False),
        ({"host": "127.0.0.1"}, False),  # the broker on this machine
        ({"host": "::1"}, False),
        ({"host": "localhost"}, False),
        ({"host": "broker.clinic.lan", "enabled": False}, False),
    ],
)
def test_tls_is_required_for_a_broker_off_this_machine(mqtt_keys: dict[str, object], refused: bool) -> None:
    from pydantic import ValidationError

    from clinic_common.mqtt import MqttConfig

    if refused:
        with pytest.raises(ValidationError, match="set insecure = true on a closed network"):
            MqttConfig.model_validate(mqtt_keys)
    else:
        MqttConfig.model_validate(mqtt_keys)


@pytest.mark.unit
def test_plain_tcp_off_this_machine_is_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    from clinic_common.mqtt import MqttConfig, configure_credentials

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    configure_credentials(client, MqttConfig(host="broker.clinic.lan", insecure=True))
    assert "MQTT to broker.clinic.lan:1883 WITHOUT TLS" in caplog.text
    assert caplog.records[-1].levelname == "WARNING"
