"""``clinic-edge session show``: a stored session's timeline in a terminal, read through the same
API as the report and the review page (:func:`edge.report.data.load_session`), never by SQL of its
own. ``latest`` names the newest session."""

from __future__ import annotations

import math
from pathlib import Path

from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.report.data import ReportError, load_session
from edge.store import Store

LATEST = "latest"


def database(config: AppConfig) -> Path:
    return config.storage.state_dir / config.storage.database


def resolve(config: AppConfig, session_id: str) -> str:
    """``session_id``, or the newest session's id for ``latest``.

    Raises:
        ReportError: ``latest`` in a database without sessions.
    """
    if session_id != LATEST:
        return session_id
    store = Store(database(config), migrate_schema=False)
    try:
        rows = store.sessions()
    finally:
        store.close()
    if not rows:
        raise ReportError(f"no session is stored in {database(config)} yet")
    return max(rows, key=lambda r: r.started_at).id


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def timeline_lines(config: AppConfig, session_id: str, registry: ChannelRegistry | None = None) -> list[str]:
    """The session's windows, one line each, then its stored transcript (where the room keeps one)."""
    registry = registry if registry is not None else default_registry()
    session = load_session(database(config), resolve(config, session_id), registry)
    lines = [
        f"session {session.id} ({session.site}/{session.room}), started {session.started_at[:19]} UTC",
        f"  {'window':>13}  {'emotion':<10} {'conf':>5}  {'from':<11} {'voiced':>6} {'arousal':>7} "
        f"{'words':>5} {'pulse':>9}  flags",
    ]
    for w in session.windows:
        voice, words, pulse = (w.channels.get(n) for n in ("voice", "words", "pulse"))
        said = sum(u.words for u in getattr(words, "utterances", ()))
        bpm = getattr(pulse, "bpm", None)
        pulse_text = f"{bpm:.0f} bpm" if bpm else getattr(pulse, "quality", "-")
        lines.append(
            f"  {w.start_s:5.1f}-{w.end_s:5.1f} s  {w.label or '-':<10} {_number(w.confidence, '5.2f'):>5}  "
            f"{'+'.join(w.fused) or '-':<11} {_number(getattr(voice, 'voiced_ratio', None), '6.2f'):>6} "
            f"{_number(getattr(voice, 'arousal', None), '7.2f'):>7} {said:5d} {pulse_text:>9}  "
            f"{', '.join(w.flags) or '-'}"
        )
    if session.transcript:
        lines += ["", "  transcript (kept on this appliance only; never published):"]
        lines += [f"  {u.start_s:5.1f}-{u.end_s:5.1f} s  [{u.label or '-'}] {u.text}" for u in session.transcript]
    return lines


def show_session(config: AppConfig, session_id: str) -> int:
    print("\n".join(timeline_lines(config, session_id)))
    return 0
