"""The room's summaries and events, built from its window results as the contract's wire models
(:mod:`contract.payload`): a window's summary, an interval's (means over its windows) and a
disparity event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np

from contract.classes import CLASSES, mean_distribution
from contract.payload import (
    Contributions,
    Emotion,
    Event,
    FaceSummary,
    Fused,
    Modalities,
    Probabilities,
    PulseSummary,
    Span,
    Summary,
    VoiceSummary,
    WordsSummary,
)
from edge.fusion.late import FUSABLE
from edge.results import GOOD, DisparityEvent, FaceChannel, PulseChannel, VoiceChannel, WindowResult, WordsChannel


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
        first=event.pair[0],  # type: ignore[arg-type]
        second=event.pair[1],  # type: ignore[arg-type]
    )


def _probs(values: Sequence[float] | None) -> Probabilities | None:
    return None if values is None else Probabilities(**dict(zip(CLASSES, (float(v) for v in values), strict=True)))


def _emotion(
    probs: Sequence[float] | None,
    channels: Collection[str],
    result: WindowResult | None = None,
    contributions: dict[str, float] | None = None,
) -> Emotion:
    """The emotion of a window (``result`` gives its decision) or of an interval (from ``probs``)."""
    used = Fused(**{c: c in channels for c in FUSABLE})
    shares = Contributions(**contributions) if contributions else None
    if probs is None:
        return Emotion(label=None, confidence=None, probs=None, fused=used)
    if result is not None:
        return Emotion(
            label=result.label,  # type: ignore[arg-type]
            confidence=None if result.confidence is None else round(result.confidence, 5),
            probs=_probs(probs),
            fused=used,
            state=result.state,
            second=result.second,  # type: ignore[arg-type]
            method=result.fusion_method,  # type: ignore[arg-type]
            contributions=shares,
        )
    best = int(np.argmax(probs))
    return Emotion(
        label=CLASSES[best],  # type: ignore[arg-type]
        confidence=round(float(probs[best]), 5),
        probs=_probs(probs),
        fused=used,
        contributions=shares,
    )


def _face(faces: Sequence[FaceChannel]) -> FaceSummary | None:
    if not faces:
        return None
    good = [f for f in faces if f.quality == GOOD]
    return FaceSummary(
        coverage=round(float(np.mean([f.coverage for f in faces])), 4),
        max_faces=max(f.max_faces for f in faces),
        probs=_probs(mean_distribution([f.probs for f in faces if f.probs is not None])),
        quality=GOOD if good else _most_common([f.quality for f in faces]),  # type: ignore[arg-type]
    )


def _voice(voices: Sequence[VoiceChannel]) -> VoiceSummary | None:
    if not voices:
        return None
    good = [v for v in voices if v.quality == GOOD]
    arousal = [v.arousal for v in voices if v.arousal is not None]
    valence = [v.valence for v in voices if v.valence is not None]
    return VoiceSummary(
        voiced_ratio=round(float(np.mean([v.voiced_ratio for v in voices])), 4),
        level_dbfs=round(float(np.mean([v.level_dbfs for v in voices])), 2),
        quality=GOOD if good else _most_common([v.quality for v in voices]),  # type: ignore[arg-type]
        method=voices[-1].method,
        probs=_probs(mean_distribution([v.probs for v in good if v.probs is not None])),
        arousal=round(float(np.mean(arousal)), 4) if arousal else None,
        valence=round(float(np.mean(valence)), 4) if valence else None,
    )


def _words(channels: Sequence[WordsChannel]) -> WordsSummary | None:
    if not channels:
        return None
    spans = {(u.start_s, u.end_s): u.words for w in channels for u in w.utterances}  # windows share utterances
    good = [w for w in channels if w.quality == GOOD and w.probs is not None]
    return WordsSummary(
        quality=GOOD if good else "no_words",
        words=sum(spans.values()),
        utterances=len(spans),
        probs=_probs(mean_distribution([w.probs for w in good if w.probs is not None])),
    )


def _pulse(channels: Sequence[PulseChannel]) -> PulseSummary | None:
    if not channels:
        return None
    good = [p for p in channels if p.quality == GOOD and p.bpm is not None]
    if good:
        return PulseSummary(
            quality=GOOD,
            bpm=round(float(np.median([p.bpm for p in good if p.bpm is not None])), 1),
            snr_db=round(float(np.median([p.snr_db for p in good])), 2),
        )
    last = channels[-1]
    return PulseSummary(quality=last.quality, bpm=None, snr_db=max(last.snr_db, -100.0))


def _most_common(values: Sequence[str]) -> str:
    return Counter(values).most_common(1)[0][0]


def _modalities(results: Sequence[WindowResult]) -> Modalities:
    return Modalities(
        face=_face([r.face for r in results if r.face is not None]),
        voice=_voice([r.voice for r in results if r.voice is not None]),
        words=_words([r.words for r in results if r.words is not None]),
        pulse=_pulse([r.pulse for r in results if r.pulse is not None]),
    )


def window_summary(result: WindowResult, *, site: str, room: str, device_id: str, seq: int, message_id: str) -> Summary:
    return Summary(
        kind="window",
        message_id=message_id,
        seq=seq,
        site=site,
        room=room,
        device_id=device_id,
        session_id=result.session_id,
        span=Span(start_s=result.start_s, end_s=result.end_s, started_at=result.started_at, windows=1),
        emotion=_emotion(result.probs, result.fused, result, result.contributions),
        modalities=_modalities([result]),
        quality=dict.fromkeys(result.flags, 1),  # type: ignore[arg-type]
    )


def interval_summary(
    results: Sequence[WindowResult], *, site: str, room: str, device_id: str, seq: int, message_id: str
) -> Summary:
    """Summarise consecutive windows: mean distributions over windows that had one."""
    if not results:
        raise ValueError("an interval summary needs at least one window")
    probs = mean_distribution([r.probs for r in results if r.probs is not None])
    used = {c for r in results for c in r.fused}
    shares = {c: [r.contributions[c] for r in results if c in r.contributions] for c in used}
    contributions = {c: round(float(np.mean(v)), 5) for c, v in shares.items() if v}
    quality: dict[str, int] = {}
    for r in results:
        for flag in r.flags:
            quality[flag] = quality.get(flag, 0) + 1
    return Summary(
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
        emotion=_emotion(probs, used, contributions=contributions),
        modalities=_modalities(results),
        quality=quality,  # type: ignore[arg-type]
    )
