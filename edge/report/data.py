"""A stored session, read back from the appliance's database into typed results."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.classes import CLASSES
from edge.channels.registry import ChannelRegistry, default_registry
from edge.errors import EdgeError
from edge.results import ChannelResult, ProductChannels


class ReportError(EdgeError):
    """The session cannot be reported (unknown id, unreadable database)."""


@dataclass(frozen=True)
class StoredWindow(ProductChannels):
    index: int
    start_s: float
    end_s: float
    label: str | None
    confidence: float | None
    probs: tuple[float, ...] | None
    state: str | None
    second: str | None
    fused: tuple[str, ...]
    contributions: dict[str, float]
    channels: dict[str, ChannelResult]  # each registered channel's stored result, by name
    flags: tuple[str, ...]
    disparity: float | None
    explanation: dict[str, Any] | None  # {"reason", "channels": {channel: its explanation}, "cost_ms"}

    def explained(self, channel: str, key: str) -> Any:
        """One value of one channel's explanation of this window, or None."""
        if self.explanation is None:
            return None
        return self.explanation["channels"].get(channel, {}).get(key)


# Explanations stored before they were per channel: flat keys -> (channel, key).
LEGACY_EXPLANATION = {
    "face_map": ("face", "map"),
    "face_regions": ("face", "regions"),
    "face_label": ("face", "label"),
    "voice_segments": ("voice", "segments"),
    "words": ("words", "words"),
}


def explanation(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored explanation in today's shape (rows written by older versions included)."""
    if raw is None or "channels" in raw:
        return raw
    parts: dict[str, dict[str, Any]] = {}
    for old, (channel, key) in LEGACY_EXPLANATION.items():
        if raw.get(old) is not None:
            parts.setdefault(channel, {})[key] = raw[old]
    return {"reason": raw.get("reason"), "channels": parts, "cost_ms": raw.get("cost_ms", {})}


@dataclass(frozen=True)
class StoredEvent:
    start_s: float
    end_s: float
    peak: float
    mean: float
    channels: tuple[str, str]


@dataclass(frozen=True)
class StoredUtterance:
    start_s: float
    end_s: float
    text: str
    label: str | None


@dataclass(frozen=True)
class SessionData:
    id: str
    site: str
    room: str
    device_id: str
    started_at: str
    ended_at: str | None
    ended_by: str | None  # "stop", or "crash" when the next start closed it
    backend: str | None
    consent_method: str | None
    pauses: int
    paused_s: float
    windows: list[StoredWindow]
    events: list[StoredEvent]
    transcript: list[StoredUtterance]  # empty unless the room stores transcripts


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


def _probs(value: str | None) -> tuple[float, ...] | None:
    raw = _json(value)
    if raw is None:
        return None
    if isinstance(raw, dict):
        return tuple(float(raw[c]) for c in CLASSES)
    return tuple(float(v) for v in raw)


def _pair(value: str) -> tuple[str, str]:
    first, second = json.loads(value)
    return str(first), str(second)


def load_session(database: Path, session_id: str, registry: ChannelRegistry | None = None) -> SessionData:
    """The session as stored; each channel of ``registry`` (the product's by default) is read back
    from its column by the channel itself.

    Raises:
        ReportError: the database is missing or unreadable, or holds no such session."""
    registry = registry if registry is not None else default_registry()
    if not database.is_file():
        raise ReportError(f"no database at {database}; check storage.state_dir in the room config")
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            session = conn.execute("SELECT * FROM sessions WHERE id = ?", [session_id]).fetchone()
            if session is None:
                recent = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY started_at DESC LIMIT 5")]
                raise ReportError(
                    f"no session {session_id} in {database}; recent sessions: {', '.join(recent) or 'none'}"
                )
            rows = conn.execute("SELECT * FROM windows WHERE session_id = ? ORDER BY idx", [session_id]).fetchall()
            events = conn.execute("SELECT * FROM events WHERE session_id = ? ORDER BY start_s", [session_id]).fetchall()
            spoken = conn.execute(
                "SELECT start_s, end_s, text, label FROM transcripts WHERE session_id = ? ORDER BY start_s",
                [session_id],
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read {database}: {exc}") from None
    windows = []
    for r in rows:
        disparity = _json(r["disparity"])
        windows.append(
            StoredWindow(
                index=r["idx"],
                start_s=r["start_s"],
                end_s=r["end_s"],
                label=r["label"],
                confidence=r["confidence"],
                probs=_probs(r["probs"]),
                state=r["state"],
                second=r["second"],
                fused=tuple(_json(r["fused"]) or ()),
                contributions=_json(r["contributions"]) or {},
                channels={
                    c.name: c.restore(raw)
                    for c in registry
                    if c.name in r.keys() and (raw := _json(r[c.name])) is not None  # noqa: SIM118 - sqlite3.Row
                },
                flags=tuple(_json(r["flags"]) or ()),
                disparity=disparity["score"] if disparity else None,
                explanation=explanation(_json(r["explanation"])),
            )
        )
    return SessionData(
        id=session["id"],
        site=session["site"],
        room=session["room"],
        device_id=session["device_id"],
        started_at=session["started_at"],
        ended_at=session["ended_at"],
        ended_by=session["ended_by"] if "ended_by" in session.keys() else None,  # noqa: SIM118 - sqlite3.Row
        backend=session["backend"],
        consent_method=session["consent_method"],
        pauses=session["pauses"] or 0,
        paused_s=session["paused_s"] or 0.0,
        windows=windows,
        events=[StoredEvent(e["start_s"], e["end_s"], e["peak"], e["mean"], _pair(e["channels"])) for e in events],
        transcript=[StoredUtterance(u[0], u[1], u[2], u[3]) for u in spoken],
    )
