"""The hub's configuration (``hub.toml``), validated once at start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from edge.config.load import _describe, _resolve
from edge.config.models import MqttConfig, StrictModel
from edge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on JetPack 6
    import tomli as tomllib

K_MIN = 11
Grain = Literal["day", "week", "month"]


class DatabaseConfig(StrictModel):
    url: str = Field(
        default="sqlite:///hub.db",
        description="SQLAlchemy URL: sqlite:///<path> (relative to the config folder) for a small clinic, "
        "postgresql+psycopg://user@host/db for a large one or many sites.",
    )
    password_file: Path | None = Field(default=None, description="PostgreSQL password (first line of the file).")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value


class PrivacyConfig(StrictModel):
    k: int = Field(
        default=K_MIN,
        ge=K_MIN,
        le=1000,
        description="Smallest number of sessions behind any number the dashboard shows (11 or more).",
    )
    finest_grain: Grain = Field(default="day", description="Finest time granularity the dashboard offers.")


class WebConfig(StrictModel):
    host: str = Field(default="127.0.0.1", description="Address the dashboard listens on (put TLS in front).")
    port: int = Field(default=8080, ge=1, le=65535)
    secret_file: Path = Field(
        default=Path("hub-session.key"),
        description="Key that signs login sessions; created (0600) at first start when missing.",
    )
    session_hours: float = Field(default=8.0, gt=0, le=168, description="A login lasts this long.")


class HubMetricsConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9109, ge=0, le=65535, description="Prometheus metrics port; 0 disables.")


class HubConfig(StrictModel):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    metrics: HubMetricsConfig = Field(default_factory=HubMetricsConfig)
    client_id: str = Field(default="clinic-hub", max_length=64, description="MQTT client id (one per hub).")
    dedup_days: int = Field(default=30, ge=1, le=3650, description="Days a message id is kept for de-duplication.")


def parse_hub_config(data: dict[str, Any], base_dir: Path) -> HubConfig:
    """Validate a parsed ``hub.toml``; relative paths resolve against ``base_dir``.

    Raises:
        ConfigError: naming every offending key, its value and what is allowed.
    """
    try:
        config = HubConfig.model_validate(data)
    except ValidationError as exc:
        lines = "\n  ".join(_describe(e).replace("room.example.toml", "hub.example.toml") for e in exc.errors())
        raise ConfigError(f"invalid hub configuration:\n  {lines}") from None
    db = config.database
    if db.url.startswith("sqlite:///"):
        db = db.model_copy(
            update={"url": "sqlite:///" + str(_resolve(Path(db.url.removeprefix("sqlite:///")), base_dir))}
        )
    if db.password_file is not None:
        db = db.model_copy(update={"password_file": _resolve(db.password_file, base_dir)})
    web = config.web.model_copy(update={"secret_file": _resolve(config.web.secret_file, base_dir)})
    mqtt = config.mqtt
    if mqtt.password_file is not None:
        mqtt = mqtt.model_copy(update={"password_file": _resolve(mqtt.password_file, base_dir)})
    if mqtt.tls is not None:
        files = {k: _resolve(v, base_dir) for k, v in mqtt.tls.model_dump().items() if v is not None}
        mqtt = mqtt.model_copy(update={"tls": mqtt.tls.model_copy(update=files)})
    return config.model_copy(update={"database": db, "web": web, "mqtt": mqtt})


def load_hub_config(path: Path) -> HubConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"hub config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read hub config {path}: {exc}") from None
    try:
        return parse_hub_config(data, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
