"""What a channel is: one modality of the client, analysed per window.

A :class:`Channel` is registered once (:mod:`edge.channels.registry`) and says, for its own kind of
result, everything the stages around it need: whether the room runs it, the per-session state that
analyses each window (:meth:`Channel.session`), its explanation of a window, its vote for the fusion
and its reliability, its valence for the disparity, its part of the published summary, how it is
stored and read back, and how it shows in the report and the metrics. The summariser, fusion,
Shapley values, payload, store, report and metrics iterate over the registered channels; none of
them names a channel.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from clinic_signals.fusion import ChannelVote
from contract.classes import CLASS_VALENCE, CLASSES
from edge.audio.features import LogMel
from edge.audio.vad import SpeechStream, VoiceActivity, voice_activity
from edge.config.models import AppConfig, AudioConfig
from edge.inference.manifest import load_manifest
from edge.inference.pack import open_pack, select_model
from edge.results import (
    FLAG_NO_AUDIO,
    FLAG_SILENCE,
    ChannelResult,
    FaceCrop,
    SpeechAttribution,
    Utterance,
    WindowInput,
)
from edge.vision.detect import FaceDetection

if TYPE_CHECKING:
    from edge.channels.speech import SpeechEmotionModel
    from edge.inference.base import InferenceEngine
    from edge.inference.face import FaceExpressionModel
    from edge.inference.shared import SharedEngines
    from edge.text.emotion import TextEmotion
    from edge.transcribe.base import Transcriber
    from edge.vision.skin import SkinSampler

VALENCE = np.array([CLASS_VALENCE[c] for c in CLASSES])


@dataclass
class AudioAnalysis:
    """The window's log-mel voice activity, computed once and shared by the audio channels."""

    activity: VoiceActivity
    hop: int  # samples between feature frames


@dataclass
class WindowContext:
    """One window as the channels see it. Channels add their quality flags, their costs
    (``<stage>_ms``) and the utterances transcribed with the window."""

    window: WindowInput
    start_s: float  # session time
    end_s: float
    audio_config: AudioConfig
    logmel: LogMel
    speech_stream: SpeechStream | None = None  # the session's learned voice activity (audio.vad = "silero")
    flags: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    transcript: list[Utterance] = field(default_factory=list)
    speech: SpeechAttribution | None = None  # who spoke (edge.speakers), None when not attributed
    _audio: AudioAnalysis | None = None
    _audio_done: bool = False

    def replace_audio(self, analysis: AudioAnalysis) -> None:
        """The voice activity the channels read from now on (the client's, after attribution)."""
        self._audio, self._audio_done = analysis, True

    def audio(self) -> AudioAnalysis | None:
        """Voice activity of the window's audio (None without audio); the first call flags the window
        ``no_audio`` or ``silence`` and records ``audio_ms``."""
        if self._audio_done:
            return self._audio
        self._audio_done = True
        window = self.window
        if not window.audio_present:
            self.flags.append(FLAG_NO_AUDIO)
            return None
        t0 = time.perf_counter()
        first = round(self.start_s * window.audio_rate)  # where the window begins in the session's sound
        activity = voice_activity(window.audio, self.logmel, self.audio_config, self.speech_stream, first)
        self.timing["audio_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        if activity.voiced_ratio < self.audio_config.min_voiced_ratio:
            self.flags.append(FLAG_SILENCE)
        self._audio = AudioAnalysis(activity, self.logmel.hop)
        return self._audio


@dataclass
class FrameContext:
    """One analysed frame as the channels' per-frame hooks see it: the picture (memory only) and the
    client's face in it. Hooks leave numbers: the face model's ``probs`` and ``crop``, the pulse's
    ``skin_rgb``, any other channel's under its name in ``values``; and their costs in ``timing``."""

    rgb: npt.NDArray[np.uint8]
    face: FaceDetection | None  # the client's (the largest in the client region), None without one
    probs: npt.NDArray[np.float32] | None = None
    crop: FaceCrop | None = None
    skin_rgb: tuple[float, float, float] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    # Frames wait for the analysis: a hook may reuse its last result for at most this many frames
    # (vision.behind_every); 1 when the analysis keeps up.
    reuse: int = 1


class FrameHook(Protocol):
    """A channel's work on every analysed frame (the frame itself is dropped after the hooks)."""

    def __call__(self, frame: FrameContext) -> None: ...


@dataclass(frozen=True)
class FrameModels:
    """What the per-frame hooks run, loaded once per room: the face model, the pulse's face mesh."""

    face: FaceExpressionModel | None = None
    skin: SkinSampler | None = None


@dataclass(frozen=True)
class LoadedModels:
    """The models the channels share, loaded once per process (:mod:`edge.channels.load`); ``own``:
    what each other registered channel loaded for itself (:meth:`Channel.load_models`), by name."""

    speech: SpeechEmotionModel | None = None
    transcriber: Transcriber | None = None
    text: TextEmotion | None = None
    own: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PackModels:
    """What a channel may load from the room's signed model pack (already authenticated at start),
    on the room's inference backends, shared with the other rooms of the process."""

    config: AppConfig
    engines: SharedEngines

    def engine(self, role: str) -> InferenceEngine | None:
        """The pack's model of ``role`` (its FP32 variant, checked against the pack), or None when
        the room has no pack or the pack no such model.

        Raises:
            ModelError: the model's files are missing, corrupt or not released.
        """
        pack = self.config.models.pack
        if pack is None or not any(m.role == role for m in open_pack(pack).models.values()):
            return None
        path = select_model(pack, role, "fp32")
        return self.engines.engine(path, load_manifest(path), self.config.inference.backends)


@dataclass(frozen=True)
class ExplainModels:
    """What the channels' explainers run: the face model (occlusion maps), the speech model."""

    face: FaceExpressionModel | None = None
    speech: SpeechEmotionModel | None = None


class ChannelExplainer(Protocol):
    """A channel's explanation of its result in one window: a JSON-able mapping (numbers and words,
    never media), or None when there is nothing to explain. Run only for the windows the explanation
    policy chooses (:mod:`edge.explain.policy`), which records its cost as ``explain_<channel>_ms``."""

    def __call__(self, context: WindowContext, result: Any) -> dict[str, Any] | None: ...


class ChannelState(Protocol):
    """A channel's state for one session (a speaker baseline, a transcription buffer, a pulse record)."""

    def analyze(self, context: WindowContext) -> ChannelResult | None:
        """This window's result, or None when the channel had nothing to analyse."""
        ...

    def settled(self, end_s: float) -> bool:
        """Whether a window ending at session time ``end_s`` can be completed: a channel whose result
        needs slower work (speech-to-text) says no until that work has reached ``end_s``."""
        ...

    def complete(self, context: WindowContext, result: ChannelResult | None, *, late: bool) -> ChannelResult | None:
        """The window's final result, once settled (``late``: the window could wait no longer);
        ``result`` is what :meth:`analyze` returned."""
        ...

    def finish(self) -> Sequence[Utterance]:
        """At the end of the session: what is still buffered (utterances still being spoken)."""
        ...

    def close(self) -> None:
        """End worker threads and forget what the session left in memory."""
        ...


class Stateless:
    """Base for channel states whose result is final when the window is analysed, with nothing to
    finish or close."""

    def settled(self, end_s: float) -> bool:  # noqa: ARG002
        return True

    def complete(self, context: WindowContext, result: ChannelResult | None, *, late: bool) -> ChannelResult | None:  # noqa: ARG002
        return result

    def finish(self) -> Sequence[Utterance]:
        return ()

    def close(self) -> None:
        return None


class Channel(ABC):
    """One modality. Subclasses set ``name`` and ``result`` and implement :meth:`session`; the other
    hooks have defaults for a channel that neither votes nor has a valence."""

    name: ClassVar[str]
    result: ClassVar[type[Any]]  # the dataclass of its per-window result
    # ``<stage>_ms`` costs in a window's timing that are exported as stage latencies
    stages: ClassVar[tuple[str, ...]] = ()
    votes: ClassVar[bool] = False  # whether it has a class distribution for the fusion
    # its part of the published summary (the contract's wire model), or None when it publishes nothing
    summary_model: ClassVar[type[BaseModel] | None] = None
    # its ``[channels.<name>]`` section (a channel beside the product's; edge.config.plugins)
    config_model: ClassVar[type[BaseModel] | None] = None

    def settings(self, config: AppConfig) -> Any:
        """Its ``[channels.<name>]`` section, or the config model's defaults when the file has none."""
        section = config.channels.section(self.name)
        if section is None and self.config_model is not None:
            return self.config_model()
        return section

    def load_models(self, config: AppConfig, pack: PackModels) -> Any:  # noqa: ARG002 - nothing of its own
        """What it loads once per room (a model from the pack: ``pack.engine(role)``), handed to
        :meth:`session` as ``models.own[name]``; None (the default) when it loads nothing.

        Raises:
            ModelError: a model it needs is missing or corrupt (the room does not start).
        """
        return None

    def close_models(self, loaded: Any) -> None:
        """Release what :meth:`load_models` loaded (the default closes it when it can be closed)."""
        close = getattr(loaded, "close", None)
        if callable(close):
            close()

    def report_section(self, explanations: Sequence[Mapping[str, Any]]) -> str | None:  # noqa: ARG002
        """Its part of the report's explanations, as HTML (escape what it shows), from its stored
        explanations of the session's explained windows; None (the default) when it adds none. The
        product's face maps and voice segments are drawn by the report itself."""
        return None

    @abstractmethod
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> ChannelState | None:
        """Fresh per-session state, or None when the room does not run this channel."""

    def frame_hook(self, config: AppConfig, models: FrameModels) -> FrameHook | None:  # noqa: ARG002
        """Its per-frame work for one session, or None (the default: it reads windows only)."""
        return None

    def explainer(
        self,
        config: AppConfig,  # noqa: ARG002
        state: ChannelState,  # noqa: ARG002
        models: ExplainModels,  # noqa: ARG002
    ) -> ChannelExplainer | None:
        """Its explanation for one session (``state`` is its session state), or None (the default)."""
        return None

    def vote(self, result: Any) -> ChannelVote:  # noqa: ARG002 - a channel without a distribution
        """Its distribution, quality and reliability in one window (``result`` may be None)."""
        return ChannelVote(self.name, None, "")

    def valence(self, result: Any) -> float | None:
        """Valence in [-1, 1] for the disparity, when the result is good and has one."""
        probs = getattr(result, "probs", None)
        if result is None or result.quality != "good" or probs is None:
            return None
        return float(np.dot(probs, VALENCE))

    def present(self, result: Any) -> bool:
        """Whether the channel had input in the window (the report's coverage)."""
        return result is not None

    def good(self, result: Any) -> bool:
        """Whether the window's result was usable (fused, or a number to show)."""
        return result is not None and result.quality == "good"

    def summarize(self, results: Sequence[Any]) -> BaseModel | None:  # noqa: ARG002 - publishes nothing
        """Its part of a summary over consecutive windows' results (at least one)."""
        return None

    def stored(self, result: Any) -> dict[str, Any]:
        """The JSON object stored in the window's row (column ``name``)."""
        out: dict[str, Any] = asdict(result)
        return out

    def restore(self, raw: Mapping[str, Any]) -> Any:
        """The result read back from its stored JSON (rows written by older versions included)."""
        return self.result(**raw)


def most_common(values: Sequence[str]) -> str:
    """The most frequent of ``values`` (the first seen among equals): a summary's quality."""
    return Counter(values).most_common(1)[0][0]
