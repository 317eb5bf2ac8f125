"""The messages a batch carries as the hub stores them: the parsed payload, its device and day,
and the two ways a message is not stored (refused, or tried again)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from contract.payload import Event, Retract, Status, Summary
from hub.store import (
    device_key,
)

logger = logging.getLogger(__name__)


class Refused(Exception):  # noqa: N818 - a message refused, not a failure of the hub
    """A message that is set aside: ``kind`` is the metric's reason label, ``detail`` the log's."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class Contended(Exception):  # noqa: N818 - a state, tried again
    """A release sealed a session part while the batch was being stored: the batch is tried again."""


@dataclass
class Message:
    """One validated message of a batch; ``index`` is its place in the batch."""

    index: int
    topic: str
    site: str
    room: str
    summary: Summary | None = None
    status: Status | None = None
    event: Event | None = None  # followed in the device's sequence; nothing of it is kept
    retract: Retract | None = None

    @property
    def device_id(self) -> str:
        """The hub's key of the publishing device: ``<site>/<room>/<device id>``. The site and room
        are the topic's, which the broker's per-room ACL lets only that room's appliance write; so a
        device is known by the broker identity, never by whoever named its id first (one room
        naming another's device id makes a device of its own room, and blocks nothing)."""
        body = self.summary or self.status or self.event or self.retract
        if body is None:  # pragma: no cover - a Message is built with one body
            raise ValueError("a message without a body")
        return device_key(self.site, self.room, body.device_id)

    @property
    def sequenced(self) -> Summary | Event | Retract | None:
        """The body of a message that takes a place in its device's sequence (all but statuses)."""
        return self.summary or self.event or self.retract

    @property
    def day(self) -> str:
        return day_of(self._summary.span.started_at)

    @property
    def _body(self) -> Summary | Event | Retract:
        if self.sequenced is None:  # pragma: no cover - statuses take no place in the sequence
            raise ValueError("a status has no sequence")
        return self.sequenced

    @property
    def _summary(self) -> Summary:
        if self.summary is None:  # pragma: no cover - only summaries have days
            raise ValueError("a status has no day")
        return self.summary


@dataclass
class Result:
    """What happened to each message of a batch (by index), and what the metrics count."""

    stored: list[Message] = field(default_factory=list)
    duplicates: list[Message] = field(default_factory=list)
    refused: list[tuple[int, Refused]] = field(default_factory=list)
    missing: int = 0
    late: int = 0
    rooms_online: int | None = None


def day_of(iso: str) -> str:
    """The UTC day of an ISO 8601 time."""
    stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc)
    return stamp.date().isoformat()
