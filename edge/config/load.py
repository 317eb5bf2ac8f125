"""Read and validate the room configuration once, at start."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config.models import AppConfig
from edge.config.profile import PROFILE_NAME, load_profile, profile_path
from edge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib


def _describe(error: Any) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling; see config/room.example.toml)"
    if error["type"] == "missing":
        return f"{key}: required but missing"
    return f"{key} = {error.get('input')!r}: {msg}"


def parse_config(data: dict[str, Any], base_dir: Path) -> AppConfig:
    """Validate a parsed TOML document; relative paths are resolved against ``base_dir``.

    Raises:
        ConfigError: naming every offending key, its value and what is allowed.
    """
    if "profile" in data:
        raise ConfigError(f"profile: unknown key (the room profile is {PROFILE_NAME} beside the config file)")
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        lines = "\n  ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid configuration:\n  {lines}") from None
    models = config.models.model_copy(
        update={
            key: _resolve(value, base_dir)
            for key, value in (("face", config.models.face), ("pack", config.models.pack))
            if value is not None
        }
    )
    storage = config.storage.model_copy(update={"state_dir": _resolve(config.storage.state_dir, base_dir)})
    channels = config.channels
    if channels.words.model is not None:
        words = channels.words.model_copy(update={"model": _resolve(channels.words.model, base_dir)})
        channels = channels.model_copy(update={"words": words})
    mqtt = config.mqtt
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if mqtt.password_file is not None:
        mqtt = mqtt.model_copy(update={"password_file": _credential(mqtt.password_file, base_dir, credentials)})
    if mqtt.tls is not None:
        tls = mqtt.tls
        files = {k: _credential(v, base_dir, credentials) for k, v in tls.model_dump().items() if v is not None}
        mqtt = mqtt.model_copy(update={"tls": tls.model_copy(update=files)})
    return config.model_copy(update={"models": models, "channels": channels, "storage": storage, "mqtt": mqtt})


def _credential(path: Path, base_dir: Path, credentials: str | None) -> Path:
    """Under systemd (``$CREDENTIALS_DIRECTORY`` set) a secret file is read from the service's
    credentials when one of the same name was loaded (``LoadCredential=<name>:<path>``, which
    `clinic-edge systemd-dropin` writes); a bare name always means a credential."""
    if credentials:
        loaded = Path(credentials) / path.name
        if loaded.is_file() or (not path.is_absolute() and len(path.parts) == 1):
            return loaded
    return _resolve(path, base_dir)


def _resolve(path: Path, base_dir: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def load_config(path: Path) -> AppConfig:
    """Load ``path`` (TOML) into a validated :class:`AppConfig`.

    Raises:
        ConfigError: the file is missing, is not TOML, or holds invalid values.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        config = parse_config(data, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config.model_copy(update={"profile": load_profile(profile_path(path))})
