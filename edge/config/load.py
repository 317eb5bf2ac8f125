"""Read and validate the room configuration once, at start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from clinic_common.config import read_toml, resolve_paths, validate
from edge.config.models import AppConfig
from edge.config.profile import PROFILE_NAME, load_profile, profile_path
from edge.errors import ConfigError


def parse_config(data: dict[str, Any], base_dir: Path) -> AppConfig:
    """Validate a parsed TOML document; relative paths are resolved against ``base_dir``.

    Raises:
        ConfigError: naming every offending key, its value and what is allowed.
    """
    if "profile" in data:
        raise ConfigError(f"profile: unknown key (the room profile is {PROFILE_NAME} beside the config file)")
    config = validate(AppConfig, data, what="configuration", example="config/room.example.toml")
    return resolve_paths(config, base_dir, os.environ.get("CREDENTIALS_DIRECTORY"))


def load_config(path: Path) -> AppConfig:
    """Load ``path`` (TOML) into a validated :class:`AppConfig`.

    Raises:
        ConfigError: the file is missing, is not TOML, or holds invalid values.
    """
    data = read_toml(path, "config file")
    try:
        config = parse_config(data, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config.model_copy(update={"profile": load_profile(profile_path(path))})
