"""The summary payload (schema version 2) and its JSON Schema.

Every field is a number, a short identifier or a label; unknown fields are rejected. There is no
field that could carry pixels, audio samples, face crops, landmarks or words (the words channel
sends its class distribution and a word count, never the words). The JSON Schema in
``schema/summary-v2.json`` is generated from these models (``python -m edge.publish.write_schema``)
and a test keeps the two identical.

Version 2 adds the voice channel's method, distribution and arousal/valence, the words and pulse
channels, each channel's quality, and the channels the fused emotion came from. All of them are
optional, so a version-1 message (which has none) is still valid and read the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.analysis.results import GOOD, FaceChannel, PulseChannel, VoiceChannel, WindowResult, WordsChannel
from edge.disparity.score import DisparityEvent
from edge.fusion.late import FUSABLE
from edge.labels import CLASSES, mean_distribution

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("schema") / f"summary-v{SCHEMA_VERSION}.json"

Label = Literal["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
Flag = Literal[
    "no_face",
    "multiple_faces",
    "small_face",
    "low_light",
    "silence",
    "audio_clipping",
    "no_video",
    "no_audio",
]
Unit = Field(ge=0.0, le=1.0)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Probabilities(_Payload):
    """Probability of each class; they sum to 1."""

    neutral: float = Unit
    calm: float = Unit
    happy: float = Unit
    sad: float = Unit
    angry: float = Unit
    fearful: float = Unit
    disgust: float = Unit
    surprised: float = Unit


class Fused(_Payload):
    face: bool
    voice: bool
    words: bool


class Contributions(_Payload):
    """Shapley value of each fused channel for the label: they sum to its probability minus 1/8."""

    face: float | None = Field(default=None, ge=-1.0, le=1.0)
    voice: float | None = Field(default=None, ge=-1.0, le=1.0)
    words: float | None = Field(default=None, ge=-1.0, le=1.0)


class Emotion(_Payload):
    label: Label | None = Field(
        description="Most likely class; null when no channel gave a result or the window abstained."
    )
    confidence: float | None = Field(ge=0.0, le=1.0)
    probs: Probabilities | None
    fused: Fused | None = Field(default=None, description="Channels fused into probs (present and of good quality).")
    state: Literal["confident", "uncertain", "mixed"] | None = Field(
        default=None, description="uncertain: below the room's confidence level, no label; mixed: see second."
    )
    second: Label | None = Field(default=None, description="The other class of a mixed result.")
    method: Literal["late", "head"] | None = Field(default=None, description="Late fusion or the pack's head.")
    contributions: Contributions | None = None


class FaceSummary(_Payload):
    coverage: float = Field(ge=0.0, le=1.0, description="Share of analysed frames with a face.")
    max_faces: int = Field(ge=0, le=64)
    probs: Probabilities | None
    quality: Literal["good", "no_face", "small_face", "low_light", "multiple_faces"] | None = None


class VoiceSummary(_Payload):
    voiced_ratio: float = Field(ge=0.0, le=1.0)
    level_dbfs: float = Field(ge=-120.0, le=10.0)
    quality: Literal["good", "silence", "audio_clipping", "settling"] | None = None
    method: Literal["speech_cnn", "acoustic"] | None = Field(
        default=None, description="speech_cnn: the pack's speech model gave probs; acoustic: cues only."
    )
    probs: Probabilities | None = None
    arousal: float | None = Field(default=None, ge=-1.0, le=1.0, description="Against the speaker's baseline.")
    valence: float | None = Field(default=None, ge=-1.0, le=1.0, description="Against the speaker's baseline.")


class WordsSummary(_Payload):
    quality: Literal["good", "no_words"]
    words: int = Field(ge=0, le=100_000, description="Words counted in the utterances summarised; never the words.")
    utterances: int = Field(ge=0, le=10_000)
    probs: Probabilities | None


class PulseSummary(_Payload):
    quality: Literal["good", "too_short", "no_face", "low_snr", "motion"]
    bpm: float | None = Field(ge=30.0, le=240.0, description="Pulse rate; null unless quality is good.")
    snr_db: float = Field(ge=-100.0, le=100.0)


class Modalities(_Payload):
    face: FaceSummary | None
    voice: VoiceSummary | None
    words: WordsSummary | None = None
    pulse: PulseSummary | None = None


class Span(_Payload):
    start_s: float = Field(ge=0.0, description="Seconds since the session started.")
    end_s: float = Field(ge=0.0)
    started_at: str = Field(description="UTC time of the span's start, ISO 8601.", max_length=40)
    windows: int = Field(ge=1, description="Windows summarised.")


class Summary(_Payload):
    schema_version: Literal[1, 2] = 2
    kind: Literal["window", "interval"]
    message_id: str = Field(pattern=r"^[0-9a-f-]{36}$", description="Unique id, for de-duplication.")
    seq: int = Field(ge=1, description="Per-device increasing sequence number, for gap detection.")
    site: str = Field(max_length=63)
    room: str = Field(max_length=63)
    device_id: str = Field(max_length=63)
    session_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    span: Span
    emotion: Emotion
    modalities: Modalities
    quality: dict[Flag, int] = Field(description="Windows in the span that carried each quality flag.")


class Event(_Payload):
    """A disparity event (topic ``.../event``): the channels disagreed for a while. Numbers only."""

    schema_version: Literal[1] = 1
    kind: Literal["disparity"]
    message_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    seq: int = Field(ge=1)
    site: str = Field(max_length=63)
    room: str = Field(max_length=63)
    device_id: str = Field(max_length=63)
    session_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    start_s: float = Field(ge=0.0, description="Seconds since the session started.")
    end_s: float = Field(ge=0.0)
    peak: float = Field(ge=0.0, le=1.0, description="Highest window disparity score in the event.")
    mean: float = Field(ge=0.0, le=1.0)
    windows: int = Field(ge=1)
    first: Literal["face", "voice", "words"] = Field(description="One of the two channels that disagreed most.")
    second: Literal["face", "voice", "words"]


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


class Status(_Payload):
    """The retained ``status`` message."""

    schema_version: Literal[1] = 1
    state: Literal["online", "offline", "stopped"]
    session: Literal["standby", "recording", "paused"] = Field(
        default="standby", description="standby: no session; recording; paused: camera and microphone released."
    )
    degraded: list[Literal["storage", "capture"]] = Field(default_factory=list, max_length=2)
    device_id: str = Field(max_length=63)
    ts: str = Field(max_length=40, description="UTC time, ISO 8601.")
    outbox: int | None = Field(
        default=None, ge=0, description="Summaries stored but not yet acknowledged by the broker (backlog)."
    )
    calibrated_at: str | None = Field(
        default=None, max_length=40, description="UTC time of the room's last calibration (room profile), ISO 8601."
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


def json_schema() -> dict[str, object]:
    schema = Summary.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"clinic-edge/summary-v{SCHEMA_VERSION}.json"
    return schema


EVENT_SCHEMA_PATH = Path(__file__).with_name("schema") / "event-v1.json"


def event_json_schema() -> dict[str, object]:
    schema = Event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "clinic-edge/event-v1.json"
    return schema
