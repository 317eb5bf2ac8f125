"""The voice channel: activity and level, interpretable cues as arousal and valence, and the pack's
speech-emotion model when there is one. The result says which method gave the emotion estimate."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from clinic_signals.fusion import CUE_TEMPERING, ChannelVote, cue_distribution
from clinic_signals.prosody import SpeakerBaseline, VoiceCues, affect, voice_cues
from contract.classes import mean_distribution
from contract.payload import Probabilities, VoiceSummary
from edge.audio.vad import VoiceActivity
from edge.channels.base import (
    Channel,
    ChannelState,
    ExplainModels,
    LoadedModels,
    Stateless,
    WindowContext,
    most_common,
)
from edge.channels.speech import SpeechEmotionModel
from edge.config.models import AppConfig, AudioConfig
from edge.explain.maps import voice_segments
from edge.results import FLAG_CLIPPING, GOOD, VoiceChannel, VoiceQuality

CLIPPED_SHARE = 0.001  # share of samples at full scale that makes a window's voice unreliable
# Acoustic cues are weak evidence: they count half in the disparity and in the fusion's weights.
CUES_WEIGHT = 0.5


class VoiceAnalyzer:
    """One per session: the speaker baseline of the acoustic cues grows over the session."""

    def __init__(self, audio: AudioConfig, speech: SpeechEmotionModel | None, tempering: float = CUE_TEMPERING) -> None:
        self.audio = audio
        self.speech = speech
        self.tempering = tempering
        self.baseline = SpeakerBaseline()

    def analyze(
        self, samples: npt.NDArray[np.float32], activity: VoiceActivity, timing: dict[str, float]
    ) -> VoiceChannel:
        base = activity_only(activity, self.audio)
        quality = base.quality
        t0 = time.perf_counter()
        cues = voice_cues(samples, silence_dbfs=self.audio.silence_dbfs) if quality != "silence" else None
        arousal = valence = confidence = None
        if cues is not None:
            settled = self.baseline.count >= self.baseline.min_windows
            estimate = affect(cues, self.baseline)  # also adds the window to the baseline
            if settled:  # before the speaker's baseline exists there is nothing to compare against
                arousal, valence = round(estimate.arousal, 4), round(estimate.valence, 4)
                confidence = estimate.confidence
            elif self.speech is None and quality == "good":
                quality = "settling"
        elif quality == "good":
            quality = "silence"  # energy said voiced, but too little of it has a pitch
        timing["voice_cues_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        probs = None
        if self.speech is not None and quality == "good":
            t1 = time.perf_counter()
            probs = mean_distribution([self.speech.predict(samples).astype(np.float64).tolist()])
            timing["speech_model_ms"] = round((time.perf_counter() - t1) * 1e3, 3)
        elif quality == "good" and valence is not None and arousal is not None:
            probs = cue_distribution(valence, arousal, confidence or 0.0, self.tempering)
        return replace(
            base,
            quality=quality,
            method="speech_cnn" if self.speech is not None else "acoustic",
            probs=probs,
            arousal=arousal,
            valence=valence,
            affect_confidence=confidence,
            cues=None if cues is None else VoiceCues(**{k: round(v, 4) for k, v in cues.as_dict().items()}),
        )


def activity_only(activity: VoiceActivity, audio: AudioConfig) -> VoiceChannel:
    """The voice channel's activity and level alone (what a room with the voice channel off reports)."""
    quality: VoiceQuality = "good"
    if activity.clipped_ratio > CLIPPED_SHARE:
        quality = "audio_clipping"
    elif activity.voiced_ratio < audio.min_voiced_ratio:
        quality = "silence"
    return VoiceChannel(
        voiced_ratio=round(activity.voiced_ratio, 4),
        level_dbfs=round(max(activity.level_dbfs, -120.0), 2),
        noise_floor_dbfs=round(max(activity.noise_floor_dbfs, -120.0), 2),
        clipped_ratio=round(activity.clipped_ratio, 5),
        quality=quality,
    )


class VoiceExplainer:
    """Importance of each half-second of the window's audio for the voice channel's estimate."""

    def __init__(self, analyzer: VoiceAnalyzer, audio: AudioConfig) -> None:
        self.analyzer = analyzer
        self.audio = audio

    def __call__(self, context: WindowContext, result: VoiceChannel | None) -> dict[str, Any] | None:
        if result is None or result.quality not in (GOOD, "settling"):
            return None
        segments = voice_segments(
            context.window.audio,
            speech=self.analyzer.speech,
            baseline=self.analyzer.baseline,
            silence_dbfs=self.audio.silence_dbfs,
        )
        return None if segments is None else {"segments": segments}


class Voice(Channel):
    name = "voice"
    result = VoiceChannel
    stages = ("voice_cues", "speech_model")
    votes = True
    summary_model = VoiceSummary

    @override
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> VoiceSession:
        voice = config.channels.voice
        analyzer = VoiceAnalyzer(config.audio, models.speech, voice.tempering) if voice.enabled else None
        return VoiceSession(config.audio, analyzer)

    @override
    def explainer(self, config: AppConfig, state: ChannelState, models: ExplainModels) -> VoiceExplainer | None:
        if not isinstance(state, VoiceSession) or state.analyzer is None:
            return None
        return VoiceExplainer(state.analyzer, config.audio)

    @override
    def vote(self, result: VoiceChannel | None) -> ChannelVote:
        """Reliability: the voiced share of the window / 0.5, capped at 1; for the acoustic cues also
        their confidence and ``CUES_WEIGHT`` (weaker evidence than a face or a trained model). The
        cues' own valence and arousal are the voice's place in the affect space."""
        if result is None:
            return ChannelVote(self.name, None, "")
        reliability = min(1.0, result.voiced_ratio / 0.5)
        if result.method == "acoustic":
            reliability *= CUES_WEIGHT * (result.affect_confidence if result.affect_confidence is not None else 1.0)
            place = None if result.valence is None or result.arousal is None else (result.valence, result.arousal)
            return ChannelVote(self.name, result.probs, result.quality, reliability, place)
        return ChannelVote(self.name, result.probs, result.quality, reliability)

    @override
    def valence(self, result: VoiceChannel | None) -> float | None:
        """The speech model's distribution, or (weaker evidence) the cues' valence against the baseline."""
        if result is None or result.quality != GOOD:
            return None
        if result.method == "speech_cnn" and result.probs is not None:
            return super().valence(result)
        return None if result.valence is None else CUES_WEIGHT * result.valence

    @override
    def present(self, result: VoiceChannel | None) -> bool:
        return result is not None and result.quality != "silence"

    @override
    def summarize(self, results: Sequence[VoiceChannel]) -> VoiceSummary:
        good = [v for v in results if v.quality == GOOD]
        arousal = [v.arousal for v in results if v.arousal is not None]
        valence = [v.valence for v in results if v.valence is not None]
        return VoiceSummary(
            voiced_ratio=round(float(np.mean([v.voiced_ratio for v in results])), 4),
            level_dbfs=round(float(np.mean([v.level_dbfs for v in results])), 2),
            quality=GOOD if good else most_common([v.quality for v in results]),  # type: ignore[arg-type]
            method=results[-1].method,
            probs=Probabilities.of(mean_distribution([v.probs for v in good if v.probs is not None])),
            arousal=round(float(np.mean(arousal)), 4) if arousal else None,
            valence=round(float(np.mean(valence)), 4) if valence else None,
            staff_share=_mean_share([v.staff_share for v in results]),
            unknown_share=_mean_share([v.unknown_share for v in results]),
        )

    @override
    def restore(self, raw: Mapping[str, Any]) -> VoiceChannel:
        cues = VoiceCues(**raw["cues"]) if raw.get("cues") else None
        return VoiceChannel(
            raw["voiced_ratio"],
            raw["level_dbfs"],
            raw["noise_floor_dbfs"],
            raw["clipped_ratio"],
            raw.get("quality", "good"),
            raw.get("method"),
            tuple(raw["probs"]) if raw.get("probs") else None,
            raw.get("arousal"),
            raw.get("valence"),
            raw.get("affect_confidence"),
            cues,
            raw.get("staff_share"),
            raw.get("unknown_share"),
        )


def _mean_share(shares: Sequence[float | None]) -> float | None:
    """Mean share over the windows whose speech was attributed (None when none was)."""
    known = [s for s in shares if s is not None]
    return round(float(np.mean(known)), 4) if known else None


class VoiceSession(Stateless):
    """The voice channel's state: the speaker's baseline (``analyzer``) when the channel is on;
    activity and level only when the room switched it off."""

    def __init__(self, audio: AudioConfig, analyzer: VoiceAnalyzer | None) -> None:
        self.audio = audio
        self.analyzer = analyzer

    def analyze(self, context: WindowContext) -> VoiceChannel | None:
        analysis = context.audio()
        if analysis is None:
            return None
        if self.analyzer is not None:
            voice = self.analyzer.analyze(context.window.audio, analysis.activity, context.timing)
        else:
            voice = activity_only(analysis.activity, self.audio)
        if voice.quality == "audio_clipping":
            context.flags.append(FLAG_CLIPPING)
        if context.speech is not None:
            voice = replace(voice, staff_share=context.speech.staff, unknown_share=context.speech.unknown)
        return voice
