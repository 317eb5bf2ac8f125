"""The room's services around its analysis: storage, metrics, control, the review page."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyAddress, model_validator

from clinic_common.config import CredentialPath, StrictModel
from clinic_common.mqtt import is_loopback


class StorageConfig(StrictModel):
    """The local database: sessions, windows, the outbox; how long they are kept."""

    state_dir: Path = Field(
        default=Path("/var/lib/clinic-edge"),
        description="Folder of the local database. Relative paths are resolved against the config file.",
    )
    database: str = Field(default="clinic-edge.db", description="SQLite file name inside state_dir.")
    retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Sessions, windows and published summaries older than this many days are deleted "
        "(securely overwritten). Summaries not yet published are kept until they are.",
    )
    retry_buffer: int = Field(
        default=900,
        ge=10,
        le=100_000,
        description="Results kept in memory while the database cannot be written (disk full); about 15 min "
        "at the default hop. Beyond it the oldest are lost and counted.",
    )


class MetricsConfig(StrictModel):
    """The Prometheus endpoint (counts and timings only, no content)."""

    enabled: bool = Field(default=True, description="Serve the metrics endpoint.")
    host: str = Field(default="127.0.0.1", description="Address the Prometheus endpoint listens on.")
    port: int = Field(default=9108, ge=0, le=65535, description="Port of the endpoint; 0 picks a free one.")


class ControlConfig(StrictModel):
    """Start, pause, resume and stop commands (the control socket and the room's MQTT command topic)."""

    command_ttl_s: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="Commands issued longer ago than this (or this far in the future) are refused.",
    )
    consent_max_age_min: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="A start whose consent was recorded longer ago than this is refused.",
    )


SELF_SIGNED_DIR = "review-tls"  # inside storage.state_dir: the review page's own certificate


class ReviewTlsConfig(StrictModel):
    """The review page's own certificate (else the room's MQTT certificate, else a self-signed one)."""

    cert_file: CredentialPath = Field(
        examples=["review.crt"], description="The page's certificate (PEM); its names must match the address."
    )
    key_file: CredentialPath = Field(examples=["review.key"], description="Its private key (PEM).")


class FhirEndpointConfig(StrictModel):
    """The clinic record's FHIR server, for sessions a person chooses to file (never automatic)."""

    url: str = Field(
        examples=["https://fhir.clinic.example/fhir"],
        pattern=r"^https?://[^\s]+$",
        max_length=500,
        description="The FHIR base URL; the bundle (a transaction) is POSTed to it. https unless on this machine.",
    )
    ca_file: CredentialPath | None = Field(
        examples=["clinic-ca.crt"], default=None, description="CA certificate(s) of the server (PEM)."
    )
    token_file: CredentialPath | None = Field(
        examples=["fhir-token"],
        default=None,
        description="A file holding the bearer token the clinic issued to this room (one line).",
    )
    username: str | None = Field(
        examples=["clinic-edge"], default=None, max_length=200, description="Basic authentication user name."
    )
    password_file: CredentialPath | None = Field(
        examples=["fhir-password"], default=None, description="Basic authentication password file."
    )
    timeout_s: float = Field(default=20.0, gt=0.0, le=300.0, description="Seconds to wait for the server.")

    @model_validator(mode="after")
    def _https_and_one_credential(self) -> FhirEndpointConfig:
        host = self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if self.url.startswith("http://") and not is_loopback(host):
            raise ValueError(f"the FHIR endpoint {self.url} is off this machine: use https")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together")
        if self.token_file is not None and self.username is not None:
            raise ValueError("give token_file or username/password_file, not both")
        return self


class ReviewConfig(StrictModel):
    """The therapists' review page (``clinic-edge review``): per-session data, on the appliance only."""

    host: str = Field(
        default="0.0.0.0",  # noqa: S104 - the clinic's network, over TLS (the unit allows private addresses only)
        description="Address the page listens on: every address by default (over TLS, reachable from the clinic's "
        "private network); 127.0.0.1 keeps it on the appliance.",
    )
    port: int = Field(default=8443, ge=0, le=65535, description="Its port; 0 picks a free one.")
    certificate: Literal["self-signed", "none"] = Field(
        default="self-signed",
        description="Without [review.tls] or the room's certificate: 'self-signed' makes one for the appliance's "
        "names and addresses at the first start (in state_dir/review-tls; doctor shows its fingerprint); 'none' "
        "serves plain HTTP, on loopback only.",
    )
    trusted_proxies: list[IPvAnyAddress] = Field(
        default_factory=list,
        max_length=16,
        description="Addresses of reverse proxies whose X-Forwarded-For the page believes (for the access log "
        "and the per-address log-in limit); none by default, not even this machine.",
    )
    tls: ReviewTlsConfig | None = Field(
        default=None,
        description="Certificate and key; by default the room's own (mqtt.tls.cert_file/key_file). Without "
        "either the page is served only on loopback, over plain HTTP.",
    )
    database: str = Field(default="review.db", description="Staff accounts and the access log, inside state_dir.")
    session_hours: float = Field(default=8.0, gt=0.0, le=24.0, description="A log-in lasts at most this long.")
    paper: Literal["A4", "Letter"] = Field(
        default="A4", description="Paper size of the printed report (the PDF): the clinic's paper."
    )
    idle_minutes: float = Field(default=20.0, gt=0.0, le=240.0, description="... or until idle this long.")
    access_log_days: int = Field(
        default=730,
        ge=30,
        le=3650,
        description="Entries of the access log (who viewed, downloaded, exported or erased what) are kept this "
        "many days: the clinic's retention for such records.",
    )
    fhir: FhirEndpointConfig | None = Field(
        default=None, description="The clinic record's FHIR server; without it sessions are exported as files."
    )


class SetupConfig(StrictModel):
    """The technician's setup page (``clinic-edge setup``): the live picture with the detections, the
    client region drawn on it and the checks with their verdict, while the room is in standby."""

    host: str = Field(
        default="127.0.0.1",
        description="Address the page listens on: this appliance only by default; any other address needs "
        "the review page's TLS (the same certificate).",
    )
    port: int = Field(default=8444, ge=0, le=65535, description="Its port; 0 picks a free one.")
    preview_fps: float = Field(
        default=4.0, ge=1.0, le=10.0, description="Pictures a second sent to the technician's browser (and checked)."
    )
    preview_width: int = Field(
        default=480, ge=160, le=1280, multiple_of=4, description="Width in pixels of the picture sent to the browser."
    )
    idle_minutes: float = Field(
        default=3.0,
        gt=0.0,
        le=60.0,
        description="The preview (camera and microphone) stops when the page has asked for nothing this long.",
    )
    window_s: float = Field(
        default=5.0, ge=2.0, le=30.0, description="The live checks judge the last this many seconds."
    )
