"""Configuration of channels registered beside the product's (``[channels.<name>]`` and their fusion
weight and temperature), validated against the room's channel registry.

The product's channels have typed sections. Another registered channel declares its own config
model (``Channel.config_model``); :func:`edge.config.load.load_config` passes the room's registry in
the validation context, and these validators accept a section or a weight only for a channel that
the registry holds (and validate it with that channel's model): a misspelt or unknown name is still
refused, with the registered names in the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ValidationInfo

REGISTRY = "registry"  # the validation context's key for the room's channel registry


class _Channel(Protocol):
    name: str
    votes: bool
    config_model: type[BaseModel] | None


def _registered(info: ValidationInfo) -> Mapping[str, _Channel]:
    context = info.context if isinstance(info.context, Mapping) else {}
    registry = context.get(REGISTRY)
    return {c.name: c for c in registry} if registry is not None else {}


def channel_sections(extra: dict[str, Any] | None, info: ValidationInfo) -> None:
    """Validate, in place, the sections of registered channels beside the product's.

    Raises:
        ValueError: a section names no registered channel with a config model.
    """
    if not extra:
        return
    channels = _registered(info)
    for name, raw in list(extra.items()):
        channel = channels.get(name)
        if channel is None or channel.config_model is None:
            known = sorted(n for n, c in channels.items() if c.config_model is not None)
            raise ValueError(f"[channels.{name}]: no registered channel of that name takes a section (known: {known})")
        extra[name] = raw if isinstance(raw, channel.config_model) else channel.config_model.model_validate(raw)


def voter_values(extra: dict[str, Any] | None, info: ValidationInfo, low: float, high: float) -> None:
    """Validate, in place, per-channel numbers (a weight, a temperature) of registered voters.

    Raises:
        ValueError: a name that is no registered voting channel, or a value out of range.
    """
    if not extra:
        return
    voters = {n for n, c in _registered(info).items() if c.votes}
    for name, value in extra.items():
        if name not in voters:
            raise ValueError(f"{name}: not a registered voting channel (voters: {sorted(voters)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"{name} = {value!r}: must be a number from {low:g} to {high:g}")
        extra[name] = float(value)
