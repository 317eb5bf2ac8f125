"""The summary payload (schema version 1) and its JSON Schema.

Every field is a number, a short identifier or a label; unknown fields are rejected. There is no
field that could carry pixels, audio samples, face crops, landmarks or words. The JSON Schema in
``schema/summary-v1.json`` is generated from these models (``python -m edge.publish.write_schema``) and
a test keeps the two identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.analysis.results import WindowResult
from edge.labels import CLASSES, mean_distribution

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema") / "summary-v1.json"

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


class Emotion(_Payload):
    label: Label | None = Field(description="Most likely class; null when no channel gave a result.")
    confidence: float | None = Field(ge=0.0, le=1.0)
    probs: Probabilities | None


class FaceSummary(_Payload):
    coverage: float = Field(ge=0.0, le=1.0, description="Share of analysed frames with a face.")
    max_faces: int = Field(ge=0, le=64)
    probs: Probabilities | None


class VoiceSummary(_Payload):
    voiced_ratio: float = Field(ge=0.0, le=1.0)
    level_dbfs: float = Field(ge=-120.0, le=10.0)


class Modalities(_Payload):
    face: FaceSummary | None
    voice: VoiceSummary | None


class Span(_Payload):
    start_s: float = Field(ge=0.0, description="Seconds since the session started.")
    end_s: float = Field(ge=0.0)
    started_at: str = Field(description="UTC time of the span's start, ISO 8601.", max_length=40)
    windows: int = Field(ge=1, description="Windows summarised.")


class Summary(_Payload):
    schema_version: Literal[1] = 1
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


def _emotion(probs: Sequence[float] | None) -> Emotion:
    if probs is None:
        return Emotion(label=None, confidence=None, probs=None)
    best = int(np.argmax(probs))
    return Emotion(label=CLASSES[best], confidence=round(float(probs[best]), 5), probs=_probs(probs))  # type: ignore[arg-type]


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
        emotion=_emotion(result.probs),
        modalities=Modalities(
            face=FaceSummary(
                coverage=result.face.coverage,
                max_faces=result.face.max_faces,
                probs=_probs(result.face.probs),
            )
            if result.face
            else None,
            voice=VoiceSummary(voiced_ratio=result.voice.voiced_ratio, level_dbfs=result.voice.level_dbfs)
            if result.voice
            else None,
        ),
        quality=dict.fromkeys(result.flags, 1),  # type: ignore[arg-type]
    )


def interval_summary(
    results: Sequence[WindowResult], *, site: str, room: str, device_id: str, seq: int, message_id: str
) -> Summary:
    """Summarise consecutive windows: mean distributions over windows that had one."""
    if not results:
        raise ValueError("an interval summary needs at least one window")
    with_probs = [r.probs for r in results if r.probs is not None]
    probs = mean_distribution(with_probs)
    faces = [r.face for r in results if r.face is not None]
    face_probs = mean_distribution([f.probs for f in faces if f.probs is not None])
    voices = [r.voice for r in results if r.voice is not None]
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
        emotion=_emotion(probs),
        modalities=Modalities(
            face=FaceSummary(
                coverage=round(float(np.mean([f.coverage for f in faces])), 4),
                max_faces=max(f.max_faces for f in faces),
                probs=_probs(face_probs),
            )
            if faces
            else None,
            voice=VoiceSummary(
                voiced_ratio=round(float(np.mean([v.voiced_ratio for v in voices])), 4),
                level_dbfs=round(float(np.mean([v.level_dbfs for v in voices])), 2),
            )
            if voices
            else None,
        ),
        quality=quality,  # type: ignore[arg-type]
    )


def json_schema() -> dict[str, object]:
    schema = Summary.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "clinic-edge/summary-v1.json"
    return schema
