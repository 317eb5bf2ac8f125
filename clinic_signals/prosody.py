"""Interpretable acoustic cues of the voice, and arousal and valence estimated from them.

No pretrained speech-emotion weights are available to the product, so the voice channel can fall
back on cues whose meaning is documented, measured on the voiced frames of a window (16 kHz mono):

The voice's pitch and quality come from Praat (Boersma and Weenink; through ``praat-parselmouth``),
the reference implementation speech scientists and clinicians use, with its standard settings:

* **Pitch** (F0) every 10 ms by Praat's "To Pitch (ac)" (Boersma 1993), 60-400 Hz. Level and
  variability are in semitones (12 log2 of F0 over 100 Hz).
* **Loudness**: RMS level of voiced frames in dBFS.
* **Speaking rate**: syllable nuclei per second of voiced time, counted as peaks of the smoothed
  intensity contour at least 2 dB above the dips around them, at least 100 ms apart, in voiced
  frames (after de Jong and Wempe, Behav. Res. Methods 41(2), 2009).
* **Voice quality**: Praat's local jitter and local shimmer (its voice-report definitions: mean
  absolute difference of consecutive glottal periods, and of their peak amplitudes, over the mean,
  on the periods Praat marks with "To PointProcess (cc)"; period limits 0.1-20 ms, factor 1.3),
  and the harmonics-to-noise ratio from Praat's voicing strength ``r`` (the normalised
  autocorrelation at the period), ``HNR = 10 log10(r / (1 - r))`` (Boersma, IFA Proceedings 17,
  1993), median over voiced frames.

Arousal and valence come from these cues *relative to the speaker's own running baseline* in the
session (z-scores), combined with fixed weights that follow the direction of the effects reviewed
by Juslin and Laukka (Psychol. Bull. 129(5), 2003): activation rises with pitch level, pitch
variability, loudness and rate; positive valence goes with a more variable pitch and a cleaner
voice (higher HNR, lower jitter/shimmer), a much weaker and less consistent link. Both are squashed
to [-1, 1] with tanh. They are cues, not measurements of feeling: valence from the voice alone is
unreliable, which the channel's result states by its lower confidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import parselmouth
from parselmouth.praat import call

from contract.audio import SAMPLE_RATE

FRAME_S = 0.040
HOP_S = 0.010
F0_RANGE = (60.0, 400.0)
PERIOD_LIMITS = (0.0001, 0.02, 1.3)  # Praat's voice-report defaults: shortest, longest period, largest ratio
AROUSAL_WEIGHTS = {"pitch_st": 0.3, "pitch_var_st": 0.2, "loudness_db": 0.3, "rate_sps": 0.2}
VALENCE_WEIGHTS = {"pitch_var_st": 0.4, "hnr_db": 0.3, "jitter": -0.15, "shimmer": -0.15}


@dataclass(frozen=True)
class VoiceCues:
    voiced_s: float
    pitch_st: float  # semitones re 100 Hz, median over voiced frames
    pitch_var_st: float  # standard deviation in semitones
    loudness_db: float  # dBFS, mean over voiced frames
    rate_sps: float  # syllable nuclei per voiced second
    jitter: float  # fraction
    shimmer: float  # fraction
    hnr_db: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def analysis_frames(signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The 40 ms frames (10 ms hop) the cues are computed on, one per row."""
    size, hop = round(FRAME_S * SAMPLE_RATE), round(HOP_S * SAMPLE_RATE)
    if signal.shape[0] < size:
        return np.zeros((0, size), dtype=np.float32)
    count = 1 + (signal.shape[0] - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return signal[idx]


def _praat(signal: npt.NDArray[np.float32], frames: int) -> tuple[npt.NDArray[np.float64], ...]:
    """Per analysis frame: F0 in Hz (NaN unvoiced) and Praat's voicing strength (the normalised
    autocorrelation at the period); and the window's local jitter and shimmer (NaN where Praat finds
    too few periods)."""
    sound = parselmouth.Sound(signal.astype(np.float64), sampling_frequency=SAMPLE_RATE)
    pitch = sound.to_pitch_ac(time_step=HOP_S, pitch_floor=F0_RANGE[0], pitch_ceiling=F0_RANGE[1])
    chosen = pitch.selected_array
    times = np.asarray(pitch.xs())
    centres = np.arange(frames) * HOP_S + FRAME_S / 2
    nearest = np.clip(np.round((centres - times[0]) / HOP_S).astype(int), 0, max(len(times) - 1, 0))
    f0 = (
        np.where(chosen["frequency"] > 0, chosen["frequency"], np.nan)[nearest]
        if len(times)
        else np.full(frames, np.nan)
    )
    strength = chosen["strength"][nearest] if len(times) else np.zeros(frames)
    periods = call([sound, pitch], "To PointProcess (cc)")
    jitter = call(periods, "Get jitter (local)", 0, 0, *PERIOD_LIMITS)
    shimmer = call([sound, periods], "Get shimmer (local)", 0, 0, *PERIOD_LIMITS, 1.6)
    return f0, strength, np.array([jitter, shimmer], dtype=np.float64)


def _syllables(level_db: npt.NDArray[np.float64], voiced: npt.NDArray[np.bool_]) -> int:
    smooth = np.convolve(level_db, np.ones(5) / 5, mode="same")
    min_gap = round(0.1 / HOP_S)
    count, last = 0, -min_gap
    for i in range(1, len(smooth) - 1):
        if not voiced[i] or smooth[i] < smooth[i - 1] or smooth[i] < smooth[i + 1] or i - last < min_gap:
            continue
        left = smooth[max(0, i - 15) : i].min(initial=smooth[i])
        right = smooth[i + 1 : i + 16].min(initial=smooth[i])
        if smooth[i] - max(left, right) >= 2.0:
            count += 1
            last = i
    return count


def voice_cues(signal: npt.NDArray[np.float32], *, silence_dbfs: float = -50.0) -> VoiceCues | None:
    """Cues of a window's voice; None when less than 0.3 s is voiced."""
    frames = analysis_frames(signal)
    if frames.shape[0] == 0:
        return None
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    level_db = 20 * np.log10(np.maximum(rms, 1e-10))
    f0, strength, (jitter, shimmer) = _praat(signal, frames.shape[0])
    voiced = np.isfinite(f0) & (level_db > silence_dbfs)
    voiced_s = float(voiced.sum() * HOP_S)
    if voiced_s < 0.3:
        return None
    semitones = 12 * np.log2(f0[voiced] / 100.0)
    r = np.clip(strength[voiced], 1e-4, 1 - 1e-4)
    return VoiceCues(
        voiced_s=voiced_s,
        pitch_st=float(np.median(semitones)),
        pitch_var_st=float(np.std(semitones)),
        loudness_db=float(np.mean(level_db[voiced])),
        rate_sps=_syllables(level_db, voiced) / voiced_s,
        jitter=float(jitter) if np.isfinite(jitter) else 0.0,
        shimmer=float(shimmer) if np.isfinite(shimmer) else 0.0,
        hnr_db=float(np.median(10 * np.log10(r / (1 - r)))),
    )


class SpeakerBaseline:
    """Running mean and spread of each cue over a session (Welford), for z-scores."""

    def __init__(self, min_windows: int = 3) -> None:
        self.count = 0
        self.min_windows = min_windows
        self._mean: dict[str, float] = {}
        self._m2: dict[str, float] = {}

    def update(self, cues: VoiceCues) -> None:
        self.count += 1
        for key, value in cues.as_dict().items():
            mean = self._mean.get(key, 0.0)
            delta = value - mean
            mean += delta / self.count
            self._mean[key] = mean
            self._m2[key] = self._m2.get(key, 0.0) + delta * (value - mean)

    def z(self, cues: VoiceCues, key: str) -> float:
        if self.count < self.min_windows:
            return 0.0
        spread = np.sqrt(self._m2[key] / (self.count - 1)) if self.count > 1 else 0.0
        return float((getattr(cues, key) - self._mean[key]) / max(spread, 1e-6))


@dataclass(frozen=True)
class Affect:
    arousal: float  # -1 calm .. +1 activated
    valence: float  # -1 negative .. +1 positive
    confidence: float  # 0..1; grows with the baseline and the voiced time


def affect(cues: VoiceCues, baseline: SpeakerBaseline, *, update: bool = True) -> Affect:
    """Arousal and valence of ``cues`` against the speaker's baseline (which is then updated, unless
    ``update`` is false: explanations compare variants of a window without learning from them)."""
    arousal = float(np.tanh(sum(w * baseline.z(cues, k) for k, w in AROUSAL_WEIGHTS.items())))
    valence = float(np.tanh(sum(w * baseline.z(cues, k) for k, w in VALENCE_WEIGHTS.items())))
    settled = min(baseline.count / 10.0, 1.0)
    confidence = settled * min(cues.voiced_s / 1.5, 1.0)
    if update:
        baseline.update(cues)
    return Affect(arousal, valence, round(confidence, 3))
