"""The hub's configuration (``hub.toml``), validated once at start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyAddress, field_validator, model_validator

from clinic_common.config import StrictModel, read_toml, resolve, resolve_paths, validate
from clinic_common.errors import ConfigError
from clinic_common.mqtt import MqttConfig
from hub.periods import Grain

K_MIN = 11


class DatabaseConfig(StrictModel):
    url: str = Field(
        default="sqlite:///hub.db",
        description="SQLAlchemy URL: sqlite:///<path> (a relative path is in the service's state folder under "
        "systemd, else beside the config file) for a small clinic, "
        "postgresql+psycopg://user@host/db for a large one or many sites.",
    )
    password_file: Path | None = Field(default=None, description="PostgreSQL password (first line of the file).")
    dashboard_password_file: Path | None = Field(
        default=None,
        description="PostgreSQL: the password (first line) of clinic_dashboard, the log-in role the dashboard "
        "uses, which may read only releases, rooms' health and accounts; the hub sets it on the role at start. "
        "Needed wherever the dashboard runs on PostgreSQL.",
    )

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
    dominance: float = Field(
        default=0.3,
        ge=0.1,
        le=0.5,
        description="Largest share of the windows behind a shown number (or behind any difference of shown "
        "numbers) that one session may hold; only sessions with an emotion result count toward k. Keeps one "
        "long session beside short or empty ones from being shown as the group's. Like k, it only tightens.",
    )
    finest_grain: Grain = Field(
        default="week",
        description="Finest time granularity released: day, week (ISO weeks) or month (months of whole ISO "
        "weeks). A finer grain shows less per room: a room's week can only be shown where its days cannot "
        "be told apart by subtraction.",
    )
    release_delay_days: int = Field(
        default=2,
        ge=0,
        le=60,
        description="A period is released this many days after it ended (summaries held in rooms' outboxes "
        "arrive first); released numbers never change.",
    )
    mode: Literal["k", "dp"] = Field(
        default="k",
        description='"k": exact numbers, each covering at least k sessions, held back where a difference would '
        'cover fewer; "dp": every number with Laplace noise (OpenDP) so that each release is epsilon-differentially '
        "private per session, whatever is subtracted or known.",
    )
    epsilon: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description='Privacy budget of one release in "dp" mode (per period and grain; a session is in one release '
        "per grain, so its total is epsilon times the grains offered). Smaller: more noise, more privacy.",
    )
    session_rows_days: int = Field(
        default=60,
        ge=1,
        le=3650,
        description="Per-session rows are deleted this many days after their month was released; its released "
        "numbers stay, and summaries that still arrive for that month are refused.",
    )


class WebConfig(StrictModel):
    host: str = Field(default="127.0.0.1", description="Address the dashboard listens on (put TLS in front).")
    port: int = Field(default=8080, ge=1, le=65535)
    trusted_proxies: list[IPvAnyAddress] = Field(
        default_factory=list,
        max_length=16,
        description="Addresses of the TLS proxy in front whose X-Forwarded-For the dashboard believes (for the "
        'audit log and the per-address log-in limit), e.g. ["127.0.0.1"] for a proxy on this machine; none by '
        "default.",
    )
    session_hours: float = Field(default=8.0, gt=0, le=168, description="A log-in lasts at most this long.")
    idle_minutes: float = Field(default=60.0, gt=0, le=1440, description="A log-in unused this long ends.")
    cookie_secure: bool = Field(
        default=True,
        description="Send the log-in cookie over HTTPS only (the dashboard sits behind a TLS proxy). Turn off "
        "only to try the dashboard over plain HTTP on this machine.",
    )
    audit_days: int = Field(default=400, ge=30, le=3650, description="Days the audit log is kept.")


class HubMetricsConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9109, ge=0, le=65535, description="Prometheus metrics port; 0 disables.")


class IngestConfig(StrictModel):
    batch_size: int = Field(
        default=500, ge=1, le=5000, description="Most messages stored in one transaction (then acknowledged)."
    )
    batch_ms: int = Field(
        default=50,
        ge=1,
        le=5000,
        description="A batch is stored this many milliseconds after its first message arrived, full or not.",
    )
    receive_maximum: int = Field(
        default=1000,
        ge=1,
        le=65535,
        description="Unacknowledged messages the broker may send a worker at once (MQTT 5 Receive Maximum); "
        "at least batch_size, and the broker's max_inflight_messages must allow it.",
    )
    share_group: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]{0,32}$",
        description="Workers with the same group share the rooms' summaries (MQTT 5 shared subscription "
        "$share/<group>/...); empty: this hub receives them all.",
    )

    @model_validator(mode="after")
    def _window(self) -> IngestConfig:
        if self.receive_maximum < self.batch_size:
            raise ValueError(
                f"receive_maximum ({self.receive_maximum}) must be at least batch_size ({self.batch_size})"
            )
        return self


class HubConfig(StrictModel):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    metrics: HubMetricsConfig = Field(default_factory=HubMetricsConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    client_id: str = Field(
        default="clinic-hub",
        max_length=48,
        description="MQTT client id (one per hub); in a share group -<worker name> is added (-main for serve).",
    )
    dedup_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days a message id, and a gap in a room's sequence, is kept (a summary later than that is "
        "stored, but fills no gap: its gap stays counted as missing).",
    )
    dead_letter_days: int = Field(
        default=90, ge=1, le=3650, description="Days a refused message's record (never its payload) is kept."
    )
    max_message_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        le=16 * 1024 * 1024,
        description="Larger messages are refused unread (a summary is about 2 KiB; set the broker's "
        "message_size_limit too).",
    )
    max_age_days: int = Field(
        default=400,
        ge=1,
        le=3650,
        description="Summaries of sessions that started longer ago than this (or more than a day ahead of the "
        "hub's clock) are refused.",
    )


def parse_hub_config(data: dict[str, Any], base_dir: Path) -> HubConfig:
    """Validate a parsed ``hub.toml``; relative paths resolve against ``base_dir``.

    Raises:
        ConfigError: naming every offending key, its value and what is allowed.
    """
    config = resolve_paths(validate(HubConfig, data, what="hub configuration", example="hub.example.toml"), base_dir)
    db = config.database
    if db.url.startswith("sqlite:///"):
        # A relative database path lives in the service's state folder under systemd (StateDirectory=
        # sets $STATE_DIRECTORY), else beside the config file.
        state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        where = Path(state) if state else base_dir
        db = db.model_copy(update={"url": "sqlite:///" + str(resolve(Path(db.url.removeprefix("sqlite:///")), where))})
    return config.model_copy(update={"database": db})


def load_hub_config(path: Path) -> HubConfig:
    data = read_toml(path, "hub config file")
    try:
        return parse_hub_config(data, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
