"""The broker connection shared by the rooms and the hub: its settings, and the user name,
password and TLS client certificate applied to a paho client."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from pydantic import Field, field_validator, model_validator

from clinic_common.config import CredentialPath, StrictModel
from clinic_common.errors import PublishError

logger = logging.getLogger(__name__)


class MqttTlsConfig(StrictModel):
    """TLS to the broker, with this device's own certificate; required off this machine."""

    ca_file: CredentialPath = Field(
        examples=["clinic-ca.crt"], description="CA certificate(s) that signed the broker's certificate (PEM)."
    )
    cert_file: CredentialPath | None = Field(
        examples=["edge-0042.crt"], default=None, description="This device's client certificate (PEM)."
    )
    key_file: CredentialPath | None = Field(
        examples=["edge-0042.key"], default=None, description="This device's private key (PEM)."
    )

    @model_validator(mode="after")
    def _cert_with_key(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class MqttConfig(StrictModel):
    """The broker the summaries go to (summaries only; never media)."""

    enabled: bool = Field(
        default=True,
        description="Publish to the broker; false: nothing is published, summaries wait in the local outbox.",
    )
    host: str = Field(examples=["broker.clinic.lan"], default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(examples=[8883], default=1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(
        examples=["edge-0042"], default=None, description="User name, if the broker requires one."
    )
    password_file: CredentialPath | None = Field(
        examples=["mqtt-password"],
        default=None,
        description="File holding the password (first line). A bare file name is a systemd credential "
        "(LoadCredential=), read from $CREDENTIALS_DIRECTORY; other relative paths are resolved against the "
        "config file's folder.",
    )
    tls: MqttTlsConfig | None = Field(
        default=None,
        description="TLS to the broker. Required for a broker off this machine unless insecure = true.",
    )
    insecure: bool = Field(
        default=False,
        description="Allow plain TCP to a broker off this machine (summaries and credentials readable on the "
        "network): only on a closed network; logged as a warning at every connection.",
    )
    topic_prefix: str = Field(default="clinic/v1", description="Topics are <prefix>/<site>/<room>/...")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive in seconds.")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Seconds to wait at start.")
    required_at_start: bool = Field(
        default=False,
        description="Refuse to start when the broker is unreachable. When false the appliance starts, "
        "stores summaries locally and publishes them once the broker is back.",
    )
    summary: Literal["window", "interval"] = Field(
        default="window", description="Publish one summary per window, or one per interval."
    )
    interval_s: float = Field(default=10.0, ge=1, le=3600, description="Length of an interval summary in seconds.")
    max_inflight: int = Field(default=20, ge=1, le=1000, description="Unacknowledged publishes at once.")

    @model_validator(mode="after")
    def _user_requires_password(self) -> MqttConfig:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file is set but username is not")
        return self

    @model_validator(mode="after")
    def _tls_off_this_machine(self) -> MqttConfig:
        if self.enabled and self.tls is None and not self.insecure and not is_loopback(self.host):
            raise ValueError(
                f"the broker {self.host} is off this machine and [mqtt.tls] is not set: add ca_file (and a "
                "client certificate), or set insecure = true on a closed network"
            )
        return self

    @field_validator("topic_prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "#+"):
            raise ValueError("must be a non-empty topic without leading/trailing '/' or wildcards")
        return value


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (traffic to it never reaches a network)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_password(path: Path) -> str:
    """The first line of ``path`` (already resolved by the config loader)."""
    try:
        return path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError) as exc:
        raise PublishError(f"cannot read the MQTT password from {path}: {exc}") from None


def configure_credentials(client: mqtt.Client, config: MqttConfig) -> None:
    """User name and password, and TLS with client certificates, as ``config`` says.

    Raises:
        PublishError: a password or TLS file is missing or unusable.
    """
    if config.username:
        password = read_password(config.password_file) if config.password_file else None
        client.username_pw_set(config.username, password)
    if config.tls is None and not is_loopback(config.host):
        logger.warning(
            "MQTT to %s:%d WITHOUT TLS (insecure = true): summaries and credentials cross the network in clear",
            config.host,
            config.port,
        )
    if config.tls is not None:
        tls = config.tls
        for what in (tls.ca_file, tls.cert_file, tls.key_file):
            if what is not None and not what.is_file():
                raise PublishError(f"MQTT TLS file not found: {what}")
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise PublishError(f"MQTT TLS set-up failed ({tls.ca_file}, {tls.cert_file}): {exc}") from exc
