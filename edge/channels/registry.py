"""The registry of channels: the one place that lists them.

Every stage that deals with channels (summariser, fusion and Shapley values, disparity, payload,
store, report, metrics) iterates over a :class:`ChannelRegistry`, in its order; the order is also the
order of the stored JSON, the published summary and the report. :func:`default_registry` is the
product's: face, voice, words and pulse. A room can be given another registry (a channel added,
see docs/developers/adding-a-channel.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from clinic_signals.fusion import ChannelVote
from contract.payload import CHANNEL_NAME, WIRE, WireModels, extended
from edge.channels.base import Channel, FrameHook, FrameModels
from edge.channels.face import Face
from edge.channels.pulse import Pulse
from edge.channels.voice import Voice
from edge.channels.words import Words
from edge.config.models import AppConfig
from edge.results import ChannelResult


class ChannelRegistry:
    def __init__(self, channels: Iterable[Channel] = ()) -> None:
        self._channels: dict[str, Channel] = {}
        self._wire: WireModels | None = None  # built once: extending the models makes new classes
        for channel in channels:
            self.register(channel)

    def register(self, channel: Channel) -> None:
        """Add ``channel`` after those already registered.

        Raises:
            ValueError: a channel of the same name is registered, or the name is not a lowercase word.
        """
        name = channel.name
        if not re.fullmatch(CHANNEL_NAME, name):
            raise ValueError(
                f"channel name {name!r} must be 1-32 lowercase letters, digits or '_', starting with a letter "
                "(it names a column, a summary field and a side of a disparity event)"
            )
        if name in self._channels:
            raise ValueError(f"a channel named {name!r} is already registered; registered: {', '.join(self._channels)}")
        self._channels[name] = channel
        self._wire = None

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._channels.values())

    def __len__(self) -> int:
        return len(self._channels)

    def __getitem__(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise KeyError(f"no channel named {name!r}; registered: {', '.join(self._channels)}") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._channels)

    @property
    def voters(self) -> tuple[Channel, ...]:
        """The channels with a class distribution for the fusion."""
        return tuple(c for c in self if c.votes)

    def votes(self, results: Mapping[str, ChannelResult]) -> list[ChannelVote]:
        """Each voting channel's vote in a window (an empty vote where it did not report)."""
        return [c.vote(results.get(c.name)) for c in self.voters]

    def valences(self, results: Mapping[str, ChannelResult]) -> dict[str, float]:
        """The valence of every channel that has one in the window, in registry order."""
        out: dict[str, float] = {}
        for channel in self:
            value = channel.valence(results.get(channel.name))
            if value is not None:
                out[channel.name] = value
        return out

    def frame_hooks(self, config: AppConfig, models: FrameModels) -> list[FrameHook]:
        """The per-frame work of the channels the room runs, in registry order (fresh per session)."""
        return [hook for c in self if (hook := c.frame_hook(config, models)) is not None]

    def stages(self) -> tuple[str, ...]:
        """The channels' ``<stage>_ms`` costs exported as stage latencies."""
        return tuple(stage for c in self for stage in c.stages)

    def wire(self) -> WireModels:
        """The summary's wire models: the contract's own for the product's channels, extended with
        the fields of any other registered channel. Built once per registry (summaries are built for
        every window)."""
        if self._wire is None:
            extra = {
                c.name: c.summary_model for c in self if c.summary_model is not None and c.name not in WIRE.channels
            }
            voters = [c.name for c in self.voters if c.name not in WIRE.voters]
            self._wire = extended(extra, voters) if extra or voters else WIRE
        return self._wire


def default_registry() -> ChannelRegistry:
    """The product's channels, in the order they are analysed, stored and shown."""
    return ChannelRegistry([Face(), Voice(), Words(), Pulse()])
