"""The wire payloads: summaries (schema version 3), disparity events, retractions and the retained status.

Every field is a number, a short identifier or a label; unknown fields are rejected. There is no
field that could carry pixels, audio samples, face crops, landmarks or words (the words channel
sends its class distribution and a word count, never the words). The room builds these models and
publishes ``model_dump_json()``; the hub reads them with ``model_validate_json``. The JSON Schemas
in ``contract/schema/`` are generated from the models (``python -m contract.write_schema``) and a
test keeps them identical.

Version 2 adds the voice channel's method, distribution and arousal/valence, the words and pulse
channels, each channel's quality, and the channels the fused emotion came from. All of them are
optional, so a version-1 message (which has none) is still valid and read the same way.

Version 3 adds who spoke: the voice's ``staff_share`` and ``unknown_share`` (speaker attribution;
every other voice field then describes the client's speech alone); and the emotion's place in the
shared affect space (``valence``, ``arousal``). Optional as well: version 1 and 2
messages are read as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from contract.classes import CLASSES, Label

SCHEMA_VERSION = 3
SCHEMA_DIR = Path(__file__).with_name("schema")
SCHEMA_PATH = SCHEMA_DIR / f"summary-v{SCHEMA_VERSION}.json"
EVENT_SCHEMA_PATH = SCHEMA_DIR / "event-v1.json"
RETRACT_SCHEMA_PATH = SCHEMA_DIR / "retract-v1.json"

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
FLAGS: tuple[str, ...] = get_args(Flag)  # every quality flag a window can carry
Unit = Field(ge=0.0, le=1.0)

# A channel's name: it names a column of the room's database, a field of the summary and a side of a
# disparity event (the room's channel registry refuses any other).
CHANNEL_NAME = r"^[a-z][a-z0-9_]{0,31}$"


# Bounds every reader and writer of the wire applies (one model, both sides).
MAX_SEQ = 2**53 - 1  # the largest integer JSON carries exactly (and far inside SQL's BIGINT)
MAX_SESSION_S = 7 * 24 * 3600.0  # a session longer than a week is not a session
MIN_HOP_S = 0.1  # windows.hop_s's lower bound: at most ten windows a second
PROBABILITY_SUM_TOLERANCE = 0.01
EARLIEST_YEAR, LATEST_YEAR = 2020, 2100


class _Payload(BaseModel):
    # No Infinity or NaN anywhere: JSON has neither, and one would corrupt every sum it joins.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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

    @model_validator(mode="after")
    def _sum_to_one(self) -> Probabilities:
        total = sum(self.model_dump().values())
        if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
            raise ValueError(f"probabilities sum to {total:.4f}, not 1")
        return self

    @classmethod
    def of(cls, values: Sequence[float] | None) -> Probabilities | None:
        """The probabilities of a distribution in the product's class order (None stays None)."""
        return None if values is None else cls(**dict(zip(CLASSES, (float(v) for v in values), strict=True)))


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
    valence: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="The fused channels' place on the circumplex: valence."
    )
    arousal: float | None = Field(default=None, ge=-1.0, le=1.0, description="... and arousal.")


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
    staff_share: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Share of voiced time that was enrolled staff's (never analysed); null when speech was not "
        "attributed. Every other voice field describes the client's speech alone.",
    )
    unknown_share: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Share of voiced time attributed to nobody for sure."
    )


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
    start_s: float = Field(ge=0.0, le=MAX_SESSION_S, description="Seconds since the session started.")
    end_s: float = Field(ge=0.0, le=MAX_SESSION_S)
    started_at: str = Field(description="UTC time of the span's start, ISO 8601.", max_length=40)
    windows: int = Field(ge=1, le=round(MAX_SESSION_S / MIN_HOP_S), description="Windows summarised.")

    @model_validator(mode="after")
    def _consistent(self) -> Span:
        if self.end_s < self.start_s:
            raise ValueError(f"span ends ({self.end_s}) before it starts ({self.start_s})")
        if self.windows > (self.end_s - self.start_s) / MIN_HOP_S + 1:
            raise ValueError(f"{self.windows} windows cannot fit in {self.end_s - self.start_s:.1f} s")
        try:
            stamp = dt.datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"started_at {self.started_at!r} is not an ISO 8601 time") from None
        if stamp.tzinfo is None:
            raise ValueError(f"started_at {self.started_at!r} has no time zone")
        if not EARLIEST_YEAR <= stamp.year <= LATEST_YEAR:
            raise ValueError(f"started_at {self.started_at!r} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
        return self


class Summary(_Payload):
    schema_version: Literal[1, 2, 3] = 3
    kind: Literal["window", "interval"]
    message_id: str = Field(pattern=r"^[0-9a-f-]{36}$", description="Unique id, for de-duplication.")
    seq: int = Field(ge=1, le=MAX_SEQ, description="Per-device increasing sequence number, for gap detection.")
    site: str = Field(max_length=63)
    room: str = Field(max_length=63)
    device_id: str = Field(max_length=63)
    session_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    span: Span
    emotion: Emotion
    modalities: Modalities
    quality: dict[Flag, int] = Field(description="Windows in the span that carried each quality flag.")

    @model_validator(mode="after")
    def _counts_within_the_span(self) -> Summary:
        for flag, count in self.quality.items():
            if not 0 <= count <= self.span.windows:
                raise ValueError(f"quality {flag}: {count} windows of {self.span.windows}")
        return self


class Event(_Payload):
    """A disparity event (topic ``.../event``): the channels disagreed for a while. Numbers only."""

    schema_version: Literal[1] = 1
    kind: Literal["disparity"]
    message_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    seq: int = Field(ge=1, le=MAX_SEQ)
    site: str = Field(max_length=63)
    room: str = Field(max_length=63)
    device_id: str = Field(max_length=63)
    session_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    start_s: float = Field(ge=0.0, le=MAX_SESSION_S, description="Seconds since the session started.")
    end_s: float = Field(ge=0.0, le=MAX_SESSION_S)
    peak: float = Field(ge=0.0, le=1.0, description="Highest window disparity score in the event.")
    mean: float = Field(ge=0.0, le=1.0)
    windows: int = Field(ge=1, le=round(MAX_SESSION_S / MIN_HOP_S))
    first: str = Field(pattern=CHANNEL_NAME, description="One of the two channels that disagreed most.")
    second: str = Field(pattern=CHANNEL_NAME, description="The other (any voting channel of the room's registry).")


class Retract(_Payload):
    """A withdrawn session (topic ``.../retract``): the client withdrew consent and the room erased it.

    The hub drops the session from everything not yet released and keeps no link between the session
    and what was released before. It travels in the room's sequence, after every summary of the session.
    """

    schema_version: Literal[1] = 1
    kind: Literal["retract"]
    message_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    seq: int = Field(ge=1, le=MAX_SEQ)
    site: str = Field(max_length=63)
    room: str = Field(max_length=63)
    device_id: str = Field(max_length=63)
    session_id: str = Field(pattern=r"^[0-9a-f-]{36}$")


class Status(_Payload):
    """The retained ``status`` message."""

    schema_version: Literal[1] = 1
    state: Literal["online", "offline", "stopped"]
    session: Literal["standby", "recording", "paused"] = Field(
        default="standby", description="standby: no session; recording; paused: camera and microphone released."
    )
    degraded: list[Literal["storage", "capture", "inference"]] = Field(
        default_factory=list,
        max_length=3,
        description="storage: results wait in memory; capture: the source is down; inference: the room runs on a "
        "later backend of its chain than the one it asked for (e.g. the CPU instead of TensorRT).",
    )
    device_id: str = Field(max_length=63)
    ts: str = Field(max_length=40, description="UTC time, ISO 8601.")
    outbox: int | None = Field(
        default=None, ge=0, description="Summaries stored but not yet acknowledged by the broker (backlog)."
    )
    calibrated_at: str | None = Field(
        default=None, max_length=40, description="UTC time of the room's last calibration (room profile), ISO 8601."
    )


@dataclass(frozen=True)
class WireModels:
    """The models a summary is built from; :data:`WIRE` is the contract's, for the product's channels."""

    summary: type[Summary]
    emotion: type[Emotion]
    modalities: type[Modalities]
    fused: type[Fused]
    contributions: type[Contributions]
    channels: tuple[str, ...]  # the fields of ``modalities``
    voters: tuple[str, ...]  # the fields of ``fused`` and ``contributions``


WIRE = WireModels(
    Summary,
    Emotion,
    Modalities,
    Fused,
    Contributions,
    tuple(Modalities.model_fields),
    tuple(Fused.model_fields),
)


def extended(channels: Mapping[str, type[BaseModel]], voters: Sequence[str]) -> WireModels:
    """The contract's models with more channels: ``channels`` (name -> its summary model) as optional
    modalities, ``voters`` as optional entries of ``fused`` and ``contributions``.

    A room whose registry adds a channel publishes through these; a hub accepts only what its
    contract lists, so a channel meant for the hub gets its model into :class:`Modalities` (and a
    new schema version) instead.
    """
    clash = (set(channels) & set(WIRE.channels)) | (set(voters) & set(WIRE.voters))
    if clash:
        raise ValueError(f"channels {sorted(clash)} are already in the contract's summary")
    fields: dict[str, Any] = {name: (model | None, None) for name, model in channels.items()}
    modalities = create_model("Modalities", __base__=Modalities, **fields)
    flags: dict[str, Any] = dict.fromkeys(voters, (bool, False))
    fused = create_model("Fused", __base__=Fused, **flags)
    shares: dict[str, Any] = {v: (float | None, Field(default=None, ge=-1.0, le=1.0)) for v in voters}
    contributions = create_model("Contributions", __base__=Contributions, **shares)
    parts: dict[str, Any] = {"fused": (fused | None, None), "contributions": (contributions | None, None)}
    emotion = create_model("Emotion", __base__=Emotion, **parts)
    summary = create_model("Summary", __base__=Summary, emotion=(emotion, ...), modalities=(modalities, ...))
    return WireModels(
        summary,
        emotion,
        modalities,
        fused,
        contributions,
        (*WIRE.channels, *channels),
        (*WIRE.voters, *voters),
    )


def json_schema() -> dict[str, object]:
    schema = Summary.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"clinic-edge/summary-v{SCHEMA_VERSION}.json"
    return schema


def event_json_schema() -> dict[str, object]:
    schema = Event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "clinic-edge/event-v1.json"
    return schema


def retract_json_schema() -> dict[str, object]:
    schema = Retract.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "clinic-edge/retract-v1.json"
    return schema
