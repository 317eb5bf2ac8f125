"""The room's summaries and events, built from its window results as the contract's wire models
(:mod:`contract.payload`): a window's summary, an interval's (means over its windows) and a
disparity event."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from pydantic import BaseModel

from contract.classes import CLASSES, mean_distribution
from contract.payload import Emotion, Event, Modalities, Probabilities, Span, Summary, WireModels
from edge.channels.registry import ChannelRegistry, default_registry
from edge.results import DisparityEvent, WindowResult


def disparity_event(
    event: DisparityEvent, *, session_id: str, site: str, room: str, device_id: str, seq: int, message_id: str
) -> Event:
    return Event(
        kind="disparity",
        message_id=message_id,
        seq=seq,
        site=site,
        room=room,
        device_id=device_id,
        session_id=session_id,
        start_s=max(event.start_s, 0.0),
        end_s=max(event.end_s, 0.0),
        peak=event.peak,
        mean=event.mean,
        windows=event.windows,
        first=event.pair[0],
        second=event.pair[1],
    )


def _emotion(
    wire: WireModels,
    probs: Sequence[float] | None,
    channels: Collection[str],
    result: WindowResult | None = None,
    contributions: dict[str, float] | None = None,
    place: tuple[float | None, float | None] = (None, None),
) -> Emotion:
    """The emotion of a window (``result`` gives its decision) or of an interval (from ``probs``),
    with its place in the affect space (valence, arousal)."""
    used = wire.fused(**{c: c in channels for c in wire.voters})
    shares = wire.contributions(**contributions) if contributions else None
    valence, arousal = place
    if probs is None:
        return wire.emotion(label=None, confidence=None, probs=None, fused=used)
    if result is not None:
        return wire.emotion(
            label=result.label,  # type: ignore[arg-type]
            confidence=None if result.confidence is None else round(result.confidence, 5),
            probs=Probabilities.of(probs),
            fused=used,
            state=result.state,
            second=result.second,  # type: ignore[arg-type]
            method=result.fusion_method,  # type: ignore[arg-type]
            contributions=shares,
            valence=valence,
            arousal=arousal,
        )
    best = int(np.argmax(probs))
    return wire.emotion(
        label=CLASSES[best],  # type: ignore[arg-type]
        confidence=round(float(probs[best]), 5),
        probs=Probabilities.of(probs),
        fused=used,
        contributions=shares,
        valence=valence,
        arousal=arousal,
    )


def _mean_place(results: Sequence[WindowResult]) -> tuple[float | None, float | None]:
    """The windows' mean place in the affect space (over windows that have one)."""
    places = [(r.valence, r.arousal) for r in results if r.valence is not None and r.arousal is not None]
    if not places:
        return None, None
    v, a = np.mean(np.asarray(places, dtype=np.float64), axis=0)
    return round(float(v), 4), round(float(a), 4)


def _modalities(wire: WireModels, registry: ChannelRegistry, results: Sequence[WindowResult]) -> Modalities:
    """Each publishing channel's summary of the results' windows (None where it never reported)."""
    parts: dict[str, BaseModel | None] = {}
    for channel in registry:
        if channel.summary_model is None:
            continue
        reported = [r.channels[channel.name] for r in results if channel.name in r.channels]
        parts[channel.name] = channel.summarize(reported) if reported else None
    return wire.modalities.model_validate(parts)


def window_summary(
    result: WindowResult,
    *,
    site: str,
    room: str,
    device_id: str,
    seq: int,
    message_id: str,
    registry: ChannelRegistry | None = None,
) -> Summary:
    registry = registry if registry is not None else default_registry()
    wire = registry.wire()
    return wire.summary(
        kind="window",
        message_id=message_id,
        seq=seq,
        site=site,
        room=room,
        device_id=device_id,
        session_id=result.session_id,
        span=Span(start_s=result.start_s, end_s=result.end_s, started_at=result.started_at, windows=1),
        emotion=_emotion(
            wire, result.probs, result.fused, result, result.contributions, (result.valence, result.arousal)
        ),
        modalities=_modalities(wire, registry, [result]),
        quality=dict.fromkeys(result.flags, 1),  # type: ignore[arg-type]
    )


def interval_summary(
    results: Sequence[WindowResult],
    *,
    site: str,
    room: str,
    device_id: str,
    seq: int,
    message_id: str,
    registry: ChannelRegistry | None = None,
) -> Summary:
    """Summarise consecutive windows: mean distributions over windows that had one."""
    if not results:
        raise ValueError("an interval summary needs at least one window")
    registry = registry if registry is not None else default_registry()
    wire = registry.wire()
    probs = mean_distribution([r.probs for r in results if r.probs is not None])
    used = {c for r in results for c in r.fused}
    shares = {c: [r.contributions[c] for r in results if c in r.contributions] for c in used}
    contributions = {c: round(float(np.mean(v)), 5) for c, v in shares.items() if v}
    quality: dict[str, int] = {}
    for r in results:
        for flag in r.flags:
            quality[flag] = quality.get(flag, 0) + 1
    return wire.summary(
        kind="interval",
        message_id=message_id,
        seq=seq,
        site=site,
        room=room,
        device_id=device_id,
        session_id=results[0].session_id,
        span=Span(
            start_s=results[0].start_s,
            end_s=results[-1].end_s,
            started_at=results[0].started_at,
            windows=len(results),
        ),
        emotion=_emotion(wire, probs, used, contributions=contributions, place=_mean_place(results)),
        modalities=_modalities(wire, registry, results),
        quality=quality,  # type: ignore[arg-type]
    )
