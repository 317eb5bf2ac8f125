"""Read and validate the room configuration once, at start."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clinic_common.config import read_toml, resolve_paths, validate
from edge.config.models import AppConfig
from edge.config.plugins import REGISTRY
from edge.config.profile import PROFILE_NAME, load_profile, profile_path
from edge.errors import ConfigError


def parse_config(data: dict[str, Any], base_dir: Path, registry: Iterable[Any] | None = None) -> AppConfig:
    """Validate a parsed TOML document; relative paths are resolved against ``base_dir``. Sections of
    channels beside the product's are accepted when ``registry`` (the room's channels) holds them.

    Raises:
        ConfigError: naming every offending key, its value and what is allowed.
    """
    if "profile" in data:
        raise ConfigError(f"profile: unknown key (the room profile is {PROFILE_NAME} beside the config file)")
    context = {REGISTRY: registry} if registry is not None else None
    config = validate(AppConfig, data, what="configuration", example="config/room.example.toml", context=context)
    return resolve_paths(config, base_dir, os.environ.get("CREDENTIALS_DIRECTORY"))


def load_config(path: Path, registry: Iterable[Any] | None = None) -> AppConfig:
    """Load ``path`` (TOML) into a validated :class:`AppConfig`; ``registry``: the room's channels
    when they are not the product's (their own sections are then accepted).

    Raises:
        ConfigError: the file is missing, is not TOML, or holds invalid values.
    """
    data = read_toml(path, "config file")
    try:
        config = parse_config(data, path.resolve().parent, registry)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config.model_copy(update={"profile": load_profile(profile_path(path))})
