"""``clinic-edge doctor``: check the whole installation before a room goes live.

GStreamer elements, the camera and microphone, the models and their manifests, enrolled staff
voices (speaker attribution), the database folder, its free space and whether it is encrypted at
rest, the broker, the system clock and the room profile's age. Each finding is pass/warn/fail with
what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge.capture.gst import GST_IMPORT_ERROR, Gst
from edge.capture.source import parse_source
from edge.config.load import load_config
from edge.config.models import AppConfig
from edge.config.profile import PROFILE_NAME
from edge.encryption import at_rest
from edge.errors import EdgeError
from edge.inference.manifest import load_manifest
from edge.inference.pack import face_model_path, trust_pack

ELEMENTS = (
    "appsink",
    "videoconvert",
    "videoscale",
    "videorate",
    "audioconvert",
    "audioresample",
    "capsfilter",
    "queue",
    "decodebin",
    "uridecodebin",
    "videotestsrc",
    "audiotestsrc",
    "v4l2src",
    "alsasrc",
    "pulsesrc",
    "rtspsrc",
    "avdec_h264",
)
PROFILE_MAX_AGE_DAYS = 180
FREE_WARN_BYTES = 1 << 30
FREE_FAIL_BYTES = 200 << 20


@dataclass(frozen=True)
class Finding:
    name: str
    status: str  # pass | warn | fail
    detail: str
    action: str = ""


def _gstreamer() -> Finding:
    if Gst is None:
        return Finding("gstreamer", "fail", f"Python bindings missing: {GST_IMPORT_ERROR}", "run scripts/setup.sh")
    if not Gst.is_initialized():
        Gst.init(None)
    missing = [e for e in ELEMENTS if Gst.ElementFactory.find(e) is None]
    if missing:
        return Finding(
            "gstreamer", "fail", f"missing elements: {', '.join(missing)}", "install the GStreamer plugin packages"
        )
    return Finding("gstreamer", "pass", f"{Gst.version_string()}, {len(ELEMENTS)} elements present")


def _source(config: AppConfig) -> Finding:
    try:
        spec = parse_source(config.capture.source)
    except EdgeError as exc:
        return Finding("source", "fail", str(exc), "connect the camera or correct capture.source")
    detail = f"{spec.kind} source {spec.redacted}"
    if spec.kind == "v4l2" and config.capture.microphone.startswith("alsa:"):
        device = config.capture.microphone.removeprefix("alsa:")
        if device.startswith("hw:") and not Path("/dev/snd").is_dir():
            return Finding("source", "fail", f"{detail}; no sound devices in /dev/snd", "connect the microphone")
    return Finding("source", "pass", detail)


def _models(config: AppConfig) -> Finding:
    try:
        signer = trust_pack(config.models)
        manifest = load_manifest(face_model_path(config.models))
    except EdgeError as exc:
        return Finding("models", "fail", str(exc))
    signed = "" if signer is None else f"; pack signed by key {signer.key_id} ({signer.key_file})"
    return Finding(
        "models",
        "pass",
        f"{manifest.name} ({manifest.precision}, sha256 {manifest.sha256[:12]}...) matches its manifest{signed}",
    )


def _storage(config: AppConfig) -> Finding:
    folder = config.storage.state_dir
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    detail = f"{folder}: {free / (1 << 30):.1f} GiB free"
    if free < FREE_FAIL_BYTES:
        return Finding("storage", "fail", detail, "free space on the state disk")
    if free < FREE_WARN_BYTES:
        return Finding("storage", "warn", detail, "free space: the appliance degrades when the disk fills")
    if folder.exists() and not os.access(folder, os.W_OK):
        return Finding(
            "storage", "fail", f"{folder} is not writable", "fix the folder's owner (systemd's StateDirectory does)"
        )
    return Finding("storage", "pass", detail)


def _encryption(config: AppConfig) -> Finding:
    state = at_rest(config.storage.state_dir)
    if state.protected:
        return Finding("at rest", "pass", f"{config.storage.state_dir}: {state.how}")
    return Finding(
        "at rest",
        "warn",
        f"{config.storage.state_dir}: {state.how}; consent references, results and any stored transcripts can be "
        "read from the disk",
        "put the state folder on a LUKS volume (docs/install.md, 'Encryption at rest')",
    )


def _broker(config: AppConfig) -> Finding:
    if not config.mqtt.enabled:
        return Finding("broker", "warn", "MQTT is disabled: summaries stay on this box", "enable [mqtt] to publish")
    where = f"{config.mqtt.host}:{config.mqtt.port}"
    if config.mqtt.tls is not None:
        for path in (config.mqtt.tls.ca_file, config.mqtt.tls.cert_file, config.mqtt.tls.key_file):
            if path is not None and not path.is_file():
                return Finding("broker", "fail", f"TLS file missing: {path}", "install the certificates")
    try:
        with socket.create_connection((config.mqtt.host, config.mqtt.port), timeout=config.mqtt.connect_timeout_s):
            pass
    except OSError as exc:
        return Finding(
            "broker", "fail", f"{where} unreachable: {exc}", "start the broker or check the network and mqtt.host"
        )
    return Finding("broker", "pass", f"{where} accepts connections")


def _clock() -> Finding:
    now = datetime.now(timezone.utc)
    if now.year < 2025:
        return Finding("clock", "fail", f"system clock says {now.isoformat(timespec='seconds')}", "set the time (NTP)")
    return Finding("clock", "pass", f"{now.isoformat(timespec='seconds')}")


def _profile(config: AppConfig, config_path: Path) -> Finding:
    profile = config.profile
    if profile is None:
        return Finding(
            "profile", "warn", f"no {PROFILE_NAME} beside {config_path}", "run clinic-edge calibrate --write"
        )
    created = datetime.fromisoformat(profile.created_at)
    age = (datetime.now(timezone.utc) - created).days
    failed = [c.name for c in profile.checks if c.status == "fail"]
    if failed:
        return Finding(
            "profile", "warn", f"calibrated {age} days ago with failed checks: {', '.join(failed)}", "recalibrate"
        )
    if age > PROFILE_MAX_AGE_DAYS:
        return Finding("profile", "warn", f"calibrated {age} days ago", "recalibrate (rooms change)")
    return Finding("profile", "pass", f"calibrated {age} days ago by {profile.technician}")


def _speakers(config: AppConfig) -> Finding:
    """Whether the room can tell staff speech from the client's."""
    from edge.channels.sessions import staff_dir  # noqa: PLC0415
    from edge.inference.pack import open_pack  # noqa: PLC0415
    from edge.speakers.staff import StaffVoices  # noqa: PLC0415

    if not config.speakers.enabled:
        return Finding("speakers", "warn", "speaker attribution is off: every voice is analysed as the client's")
    pack = config.models.pack
    try:
        roles = set() if pack is None else {m.role for m in open_pack(pack).models.values()}
    except EdgeError as exc:
        return Finding("speakers", "fail", f"cannot read the model pack: {exc}")
    if "speaker" not in roles:
        return Finding(
            "speakers",
            "warn",
            "no speaker encoder in the model pack: every voice is analysed as the client's",
            "clinic-export speaker --pack PACK",
        )
    enrolled = StaffVoices(staff_dir(config)).list()
    if not enrolled:
        return Finding(
            "speakers",
            "warn",
            "no staff voice enrolled: every voice is analysed as the client's",
            "clinic-edge staff-voice enroll --config ROOM --staff-id ID --audio FILE.wav --consent REF",
        )
    return Finding("speakers", "pass", f"{len(enrolled)} staff voices enrolled")


def _review(config: AppConfig) -> Finding:
    """Where therapists reach the review page, and the certificate they are shown there."""
    from edge.review.certificate import fingerprint  # noqa: PLC0415
    from edge.review.service import page_urls  # noqa: PLC0415

    tls = config.review_tls()
    urls = ", ".join(page_urls(config, "https" if tls else "http", config.review.port))
    if tls is None:
        return Finding(
            "review",
            "warn",
            f"{urls} without TLS: on this appliance only",
            'set [review.tls] or review.certificate = "self-signed" to reach it from the clinic\'s desks',
        )
    if not tls.cert_file.is_file():
        made = "is made at the review page's first start" if config.review_self_signed() else "is missing"
        return Finding(
            "review",
            "warn" if config.review_self_signed() else "fail",
            f"{urls}; its certificate {made}",
            "systemctl start clinic-edge-review, then run doctor again for its fingerprint",
        )
    kind = "self-signed" if config.review_self_signed() else "the clinic's"
    return Finding("review", "pass", f"{urls}; certificate ({kind}) SHA-256 {fingerprint(tls.cert_file)}")


def findings(config: AppConfig, config_path: Path) -> list[Finding]:
    """Every check of the installation, in the order a technician reads them."""
    return [
        _gstreamer(),
        _source(config),
        _models(config),
        _speakers(config),
        _storage(config),
        _encryption(config),
        _broker(config),
        _clock(),
        _profile(config, config_path),
        _review(config),
    ]


def doctor(config_path: Path, *, as_json: bool) -> int:
    """Run every check; 0 when nothing failed, 1 otherwise."""
    started = time.monotonic()
    found = findings(load_config(config_path), config_path)
    if as_json:
        body = {"findings": [asdict(f) for f in found], "elapsed_s": round(time.monotonic() - started, 2)}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        for f in found:
            sys.stdout.write(f"  {f.status.upper():<4}  {f.name:<10} {f.detail}\n")
            if f.action:
                sys.stdout.write(f"        {'':<10} -> {f.action}\n")
    return 1 if any(f.status == "fail" for f in found) else 0
