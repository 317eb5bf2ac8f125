"""Remote photoplethysmography: the pulse from the colour of facial skin.

The algorithm is POS, "plane orthogonal to skin" (Wang, den Brinker, Stuijk and de Haan, *Algorithmic
principles of remote PPG*, IEEE TBME 64(7), 2017): in windows of 1.6 s the mean skin colour is
divided by its temporal mean, projected on the plane orthogonal to the skin tone,
``S = [[0, 1, -1], [-2, 1, 1]] @ C``, and the two projections are combined with
``h = S1 + (std(S1) / std(S2)) * S2``; windows are overlap-added. The pulse signal is band-passed
(4th-order Butterworth, 0.7-3.0 Hz, i.e. 42-180 beats per minute, applied forwards and backwards)
and its rate is the peak of the Welch power spectrum in that band.

Quality is the signal-to-noise ratio of de Haan and Jeanne (*Robust pulse rate from
chrominance-based rPPG*, IEEE TBME 60(10), 2013): power near the peak and its first harmonic
against the rest of the band, in dB. "Near" is 0.2 Hz either side rather than their 0.1 Hz: with
the 10-15 s buffers a room can afford, the spectrum's resolution is coarser than theirs. A rate is
reported only when the SNR reaches the threshold (3 dB) and enough of the buffer came from a face;
otherwise the result says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from clinic_signals.filters import butter_bandpass, sosfiltfilt, welch

BAND_HZ = (0.7, 3.0)
POS_WINDOW_S = 1.6
NEAR_HZ = 0.2
PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])

Reason = Literal["ok", "too_short", "no_face", "low_snr", "motion"]


@dataclass(frozen=True)
class PulseEstimate:
    """A pulse rate with its quality, or the reason there is none."""

    bpm: float | None
    snr_db: float
    quality: float  # 0..1, from the SNR
    reason: Reason
    face_ratio: float  # share of the buffer's frames that had skin to read


def pos_signal(rgb: npt.NDArray[np.float64], fps: float) -> npt.NDArray[np.float64]:
    """The POS pulse signal of ``rgb`` ``(N, 3)`` mean skin colours sampled at ``fps``."""
    n = rgb.shape[0]
    length = max(round(POS_WINDOW_S * fps), 2)
    pulse = np.zeros(n)
    for start in range(n - length + 1):
        block = rgb[start : start + length].T  # (3, L)
        mean = block.mean(axis=1, keepdims=True)
        if np.any(mean <= 0):
            continue
        s = PROJECTION @ (block / mean)
        std2 = s[1].std()
        h = s[0] + (s[0].std() / std2 if std2 > 1e-12 else 0.0) * s[1]
        pulse[start : start + length] += h - h.mean()
    return pulse


def bandpass(signal: npt.NDArray[np.float64], fps: float) -> npt.NDArray[np.float64]:
    return sosfiltfilt(butter_bandpass(4, *BAND_HZ, fs=fps), signal)


def snr_db(signal: npt.NDArray[np.float64], fps: float) -> tuple[float, float]:
    """(peak frequency in Hz, SNR in dB) of ``signal`` within the pulse band."""
    freqs, power = welch(signal, fps, nperseg=min(len(signal), int(fps * 8)), nfft=max(2048, len(signal)))
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    if not band.any() or power[band].sum() <= 0:
        return 0.0, -100.0
    peak = float(freqs[band][np.argmax(power[band])])
    near = band & ((np.abs(freqs - peak) <= NEAR_HZ) | (np.abs(freqs - 2 * peak) <= NEAR_HZ))
    noise = power[band & ~near].sum()
    return peak, float(10 * np.log10(power[near].sum() / max(noise, 1e-20)))


def estimate_pulse(
    rgb: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    fps: float,
    *,
    min_seconds: float = 6.0,
    min_face_ratio: float = 0.8,
    min_snr_db: float = 3.0,
    max_jump: float = 0.05,
) -> PulseEstimate:
    """Pulse rate from mean skin colours ``rgb`` ``(N, 3)`` (0-255) and which frames had a face.

    Frames without a face are filled by interpolation when they are few; ``max_jump`` is the
    largest relative frame-to-frame change in brightness before the buffer counts as motion.
    """
    n = rgb.shape[0]
    face_ratio = float(valid.mean()) if n else 0.0
    if n < min_seconds * fps:
        return PulseEstimate(None, -100.0, 0.0, "too_short", face_ratio)
    if face_ratio < min_face_ratio:
        return PulseEstimate(None, -100.0, 0.0, "no_face", face_ratio)
    idx = np.arange(n)
    filled = np.stack([np.interp(idx, idx[valid], rgb[valid, c]) for c in range(3)], axis=1)
    brightness = filled.mean(axis=1)
    jumps = np.abs(np.diff(brightness)) / np.maximum(brightness[:-1], 1e-6)
    if np.quantile(jumps, 0.95) > max_jump:
        return PulseEstimate(None, -100.0, 0.0, "motion", face_ratio)
    pulse = bandpass(pos_signal(filled, fps), fps)
    peak, snr = snr_db(pulse, fps)
    quality = float(np.clip((snr + 10.0) / 20.0, 0.0, 1.0))  # -10 dB -> 0, +10 dB -> 1
    if snr < min_snr_db:
        return PulseEstimate(None, snr, quality, "low_snr", face_ratio)
    return PulseEstimate(round(60.0 * peak, 1), snr, quality, "ok", face_ratio)
