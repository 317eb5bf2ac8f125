"""The voice channel: activity and level, interpretable cues as arousal and valence, and the pack's
speech-emotion model when there is one. The result says which method gave the emotion estimate."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from clinic_signals.prosody import SpeakerBaseline, VoiceCues, affect, voice_cues
from contract.classes import mean_distribution
from edge.audio.vad import VoiceActivity
from edge.channels.speech import SpeechEmotionModel
from edge.config.models import AudioConfig
from edge.results import VoiceChannel, VoiceQuality

CLIPPED_SHARE = 0.001  # share of samples at full scale that makes a window's voice unreliable


class VoiceAnalyzer:
    """One per session: the speaker baseline of the acoustic cues grows over the session."""

    def __init__(self, audio: AudioConfig, speech: SpeechEmotionModel | None) -> None:
        self.audio = audio
        self.speech = speech
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
