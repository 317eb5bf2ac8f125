"""The room's vocabulary: the typed results passed between stages, with their quality types, the
disparity and explanation types. Everything above (channels, fusion, the window pipeline, store,
payload, report, runtime) imports it, and it imports nothing of theirs. None of them holds pixels,
samples or landmarks, except :class:`FaceCrop`, which lives in memory with its window only.

Each channel reports its own ``quality``: ``"good"`` when its result may be fused, otherwise the
reason it may not (the channel's value is still kept for the record). Transcribed text exists only
in :class:`Utterance`, which is kept in memory and stored only when the room's config says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from clinic_signals.prosody import VoiceCues
from contract.classes import CLASSES
from contract.payload import FLAGS

R = TypeVar("R")

# Quality flags a window can carry (the contract lists them all: contract.payload.FLAGS).
# FrameAnalysis.values key of the mouth's opening (the face mesh's lips apart / face height)
MOUTH = "mouth"

FLAG_NO_FACE = "no_face"
FLAG_MULTIPLE_FACES = "multiple_faces"
FLAG_SMALL_FACE = "small_face"
FLAG_LOW_LIGHT = "low_light"
FLAG_SILENCE = "silence"
FLAG_CLIPPING = "audio_clipping"
FLAG_NO_VIDEO = "no_video"
FLAG_NO_AUDIO = "no_audio"


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """The aligned grey crop of one frame's face and its landmarks in crop pixels. Memory only."""

    pixels: npt.NDArray[np.uint8] = field(repr=False)
    eyes: tuple[tuple[float, float], tuple[float, float]]
    nose: tuple[float, float]


@dataclass(frozen=True, slots=True)
class SpeechAttribution:
    """Shares of one window's voiced time by speaker (they sum to 1 when ``voiced_s`` > 0): only the
    client's speech is analysed (:mod:`edge.speakers`)."""

    client: float
    staff: float
    unknown: float
    voiced_s: float  # voiced seconds before attribution


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a window came out as it did: each channel's own explanation (its ``explainer`` hook), by
    channel name. The face's is ``{"map": grid x grid (row 0 at the top of the face), "regions": share
    of positive importance per region, "label": the class the map explains}``; the voice's
    ``{"segments": importance per half-second}``; the words' ``{"words": [(word, importance)]}``, only
    where transcripts are stored."""

    reason: str  # every | disagreement | request
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost_ms: dict[str, float] = field(default_factory=dict)

    def part(self, channel: str, key: str) -> Any:
        """One value of one channel's explanation, or None."""
        return self.channels.get(channel, {}).get(key)


@dataclass(frozen=True, slots=True)
class Disparity:
    score: float  # 0..1
    pair: tuple[str, str]  # the two channels that disagree most
    valence: dict[str, float]  # per channel


@dataclass(frozen=True, slots=True)
class DisparityEvent:
    start_s: float
    end_s: float
    peak: float
    mean: float
    windows: int
    pair: tuple[str, str]


@dataclass(frozen=True, slots=True)
class FrameAnalysis:
    """What one analysed frame contributes to its windows."""

    pts_s: float
    faces: int  # faces in the client region
    face_width_px: float  # of the analysed (largest) face; 0 without a face
    detection_score: float
    probs: npt.NDArray[np.float32] | None  # (8,) face-expression probabilities of the largest face
    luma: float
    detect_ms: float
    classify_ms: float
    ignored_faces: int = 0  # faces outside the client region, never analysed
    skin_rgb: tuple[float, float, float] | None = None  # mean skin colour of the client's face (pulse)
    skin_ms: float = 0.0
    # The aligned face crop, kept in memory with its window only when explanations may need it.
    crop: FaceCrop | None = field(default=None, repr=False, compare=False)
    # What other channels' per-frame hooks found, by channel name (numbers only, never pixels).
    values: Mapping[str, Any] = field(default_factory=dict, compare=False)
    hook_ms: Mapping[str, float] = field(default_factory=dict, compare=False)  # each hook's ``<stage>_ms``

    def __post_init__(self) -> None:
        if self.probs is not None and self.probs.shape != (len(CLASSES),):
            raise ValueError(f"expected {len(CLASSES)} class probabilities, got shape {self.probs.shape}")


GOOD: Final = "good"


class ChannelResult(Protocol):
    """What every channel's per-window result has: its quality, ``good`` when it may be fused,
    otherwise the reason it may not (the result is still kept for the record)."""

    @property
    def quality(self) -> str: ...


def channel_of(channels: Mapping[str, ChannelResult], name: str, kind: type[R]) -> R | None:
    """The result of channel ``name`` as ``kind``, or None when the channel did not report."""
    value = channels.get(name)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(f"channel {name!r} reported a {type(value).__name__}, expected {kind.__name__}")
    return value


FaceQuality = Literal["good", "no_face", "small_face", "low_light", "multiple_faces"]
VoiceQuality = Literal["good", "silence", "audio_clipping", "settling"]
# late: the window was completed before its words were (``channels.words.max_wait_s``); skipped: its
# speech was not transcribed because the device was behind real time.
WordsQuality = Literal["good", "no_words", "late", "skipped"]
PulseQuality = Literal["good", "too_short", "no_face", "low_snr", "motion"]
VoiceMethod = Literal["speech_cnn", "acoustic"]


@dataclass(frozen=True, slots=True)
class FaceChannel:
    frames: int  # analysed frames in the window
    coverage: float  # fraction of them with a face
    max_faces: int
    mean_detection_score: float
    probs: tuple[float, ...] | None  # None when the face channel is off or there was no usable face
    quality: FaceQuality = "good"


@dataclass(frozen=True, slots=True)
class VoiceChannel:
    voiced_ratio: float
    level_dbfs: float
    noise_floor_dbfs: float
    clipped_ratio: float
    quality: VoiceQuality = "good"
    method: VoiceMethod | None = None  # what gave the emotion estimate; None when the voice channel is off
    probs: tuple[float, ...] | None = None  # the speech model's distribution (method speech_cnn)
    arousal: float | None = None  # -1 calm .. +1 activated, against the speaker's session baseline
    valence: float | None = None  # -1 negative .. +1 positive
    affect_confidence: float | None = None
    cues: VoiceCues | None = None  # interpretable cues of the voiced audio (numbers only)
    # Shares of the window's voiced time that were staff's or nobody's for sure (edge.speakers); the
    # rest (voiced_ratio, cues, estimates) is the client's alone. None: speech was not attributed.
    staff_share: float | None = None
    unknown_share: float | None = None


@dataclass(frozen=True, slots=True)
class Utterance:
    """One transcribed stretch of speech. Memory only, unless the room stores transcripts."""

    start_s: float  # session time
    end_s: float
    text: str
    probs: tuple[float, ...]
    label: str
    confidence: float
    importance: tuple[tuple[str, float], ...]  # (word, importance for the label), leave-one-word-out
    transcribe_ms: float
    text_ms: float
    # (start_s, end_s) of each word of ``text`` in session time; empty when not known
    word_times: tuple[tuple[float, float], ...] = ()

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    def words_in(self, start_s: float, end_s: float) -> list[int]:
        """Positions of the words spoken in ``[start_s, end_s)`` (by each word's midpoint); without
        word times, every word when the utterance overlaps the span."""
        if not self.word_times:
            overlaps = self.start_s < end_s and self.end_s > start_s
            return list(range(self.word_count)) if overlaps else []
        return [i for i, (a, b) in enumerate(self.word_times) if start_s <= (a + b) / 2 < end_s]


@dataclass(frozen=True, slots=True)
class UtteranceSpan:
    """Where an utterance lies and how many words it has; no words themselves."""

    start_s: float
    end_s: float
    words: int


@dataclass(frozen=True, slots=True)
class WordsChannel:
    """The text emotion of the words spoken in the window (each word weighs its utterance's
    emotion); ``utterances`` are the utterances those words belong to."""

    utterances: tuple[UtteranceSpan, ...]
    probs: tuple[float, ...] | None
    quality: WordsQuality
    in_window: int | None = None  # words spoken in the window (None in rows stored before word times)

    @property
    def words(self) -> int:
        return self.in_window if self.in_window is not None else sum(u.words for u in self.utterances)


@dataclass(frozen=True, slots=True)
class PulseChannel:
    bpm: float | None
    snr_db: float
    signal_quality: float  # 0..1 from the SNR
    face_ratio: float  # share of the pulse window's frames with skin to read
    seconds: float  # length of the skin-colour record the estimate used
    quality: PulseQuality


class ProductChannels:
    """Typed access to the product's own channels of a result that holds ``channels`` by name."""

    __slots__ = ()
    channels: Mapping[str, ChannelResult]

    @property
    def face(self) -> FaceChannel | None:
        return channel_of(self.channels, "face", FaceChannel)

    @property
    def voice(self) -> VoiceChannel | None:
        return channel_of(self.channels, "voice", VoiceChannel)

    @property
    def words(self) -> WordsChannel | None:
        return channel_of(self.channels, "words", WordsChannel)

    @property
    def pulse(self) -> PulseChannel | None:
        return channel_of(self.channels, "pulse", PulseChannel)


@dataclass(frozen=True)
class WindowInput:
    """One window's media as the windower cut it: the frames' analyses and the audio samples, in
    memory only, dropped once the window is summarised."""

    index: int
    origin_s: float  # stream time of this capture segment's first media
    segment_offset_s: float  # session time at which this capture segment began (0 for the first)
    start_s: float
    end_s: float
    frames: tuple[FrameAnalysis, ...]
    audio: npt.NDArray[np.float32]  # in memory only; dropped after summarising
    audio_rate: int
    video_present: bool
    audio_present: bool
    ready_monotonic: float


@dataclass(frozen=True, slots=True)
class WindowResult(ProductChannels):
    """One window's result: the unit that is stored and summarised."""

    session_id: str
    index: int
    start_s: float  # stream time
    end_s: float
    started_at: str  # UTC ISO-8601 wall time of the window start
    probs: tuple[float, ...] | None  # fused distribution over CLASSES; None when no channel spoke
    label: str | None
    confidence: float | None
    flags: tuple[str, ...]
    # Each registered channel's result, by channel name (edge.channels.registry), in registry order;
    # a channel that is off or had no input is absent.
    channels: Mapping[str, ChannelResult] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)
    ready_monotonic: float = 0.0  # when the window's last media arrived (for latency)
    fused: tuple[str, ...] = ()  # channels whose distributions made ``probs``
    transcript: tuple[Utterance, ...] = ()  # utterances transcribed while this window was analysed
    state: Literal["confident", "uncertain", "mixed"] | None = None
    second: str | None = None  # the other class of a mixed window
    contributions: dict[str, float] = field(default_factory=dict)  # Shapley value of each fused channel
    fusion_method: str | None = None  # late | head
    disparity: Disparity | None = None
    events: tuple[DisparityEvent, ...] = ()  # disparity events that ended with this window
    explanation: Explanation | None = None
    valence: float | None = None  # the fused place in the affect space (edge.fusion.affect)
    arousal: float | None = None

    def __post_init__(self) -> None:
        if self.probs is not None:
            if len(self.probs) != len(CLASSES):
                raise ValueError(f"expected {len(CLASSES)} probabilities, got {len(self.probs)}")
            if abs(sum(self.probs) - 1.0) > 1e-3:
                raise ValueError(f"probabilities must sum to 1, got {sum(self.probs):.4f}")
        unknown = set(self.flags) - set(FLAGS)
        if unknown:
            raise ValueError(f"unknown quality flags {sorted(unknown)}")
        if self.end_s <= self.start_s:
            raise ValueError(f"window end {self.end_s} is not after its start {self.start_s}")
