"""The session page's interactive timeline: each window's fused result and every channel's, the
disparity moments and, where the room keeps transcripts, what was said during each. Numbers, labels
and (only where kept) the transcript's words: the page draws it with its own script."""

from __future__ import annotations

from typing import Any

from contract.classes import CLASS_COLOURS, CLASSES
from edge.channels.registry import ChannelRegistry
from edge.report.data import SessionData


def _label(probs: tuple[float, ...] | None) -> str | None:
    if probs is None:
        return None
    return CLASSES[max(range(len(probs)), key=lambda i: probs[i])]


def timeline_data(session: SessionData, registry: ChannelRegistry, *, transcripts_kept: bool) -> dict[str, Any]:
    voters = [c.name for c in registry.voters]
    windows = []
    for w in session.windows:
        votes = registry.votes(w.channels)
        channels = {
            v.name: {"label": _label(v.probs) if v.quality == "good" else None, "quality": v.quality} for v in votes
        }
        pulse = w.channels.get("pulse")
        bpm = getattr(pulse, "bpm", None) if pulse is not None and getattr(pulse, "quality", "") == "good" else None
        windows.append(
            {
                "index": w.index,
                "start": round(w.start_s, 2),
                "end": round(w.end_s, 2),
                "label": w.label,
                "state": w.state,
                "confidence": None if w.confidence is None else round(w.confidence, 3),
                "disparity": None if w.disparity is None else round(w.disparity, 3),
                "pulse": None if bpm is None else round(float(bpm), 1),
                "channels": channels,
            }
        )
    moments = []
    for e in session.events:
        said = [
            {"start": round(u.start_s, 1), "text": u.text, "label": u.label}
            for u in session.transcript
            if u.start_s < e.end_s and u.end_s > e.start_s
        ]
        moments.append(
            {
                "start": round(e.start_s, 2),
                "end": round(e.end_s, 2),
                "peak": round(e.peak, 3),
                "channels": list(e.channels),
                "said": said,
            }
        )
    end = max([w.end_s for w in session.windows] + [e.end_s for e in session.events] + [1.0])
    return {
        "classes": list(CLASSES),
        "colours": CLASS_COLOURS,
        "channels": voters,
        "windows": windows,
        "moments": moments,
        "end": round(end, 2),
        "transcripts_kept": transcripts_kept,
    }
