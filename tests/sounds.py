"""Sounds that are not speech, generated (16 kHz, float): noise colours, a mains hum, a warbling tone
in bursts (a siren, a ringtone), chirps, a music-like arpeggio, clicks, door-like thumps and
keyboard-like bursts. Shared by the tests of the windows' voice activity and the non-speech benchmark."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

RATE = 16_000
SECONDS = 30.0
Signal = npt.NDArray[np.float32]
NOT_SPEECH = (
    "warbling tone in bursts over pink noise",
    "sweeping whine in bursts over pink noise",
    "music-like arpeggio",
    "keyboard-like bursts",
    "door-like thumps",
)


def _t(seconds: float = SECONDS) -> npt.NDArray[np.float64]:
    return np.arange(int(seconds * RATE)) / RATE


def _coloured(rng: np.random.Generator, exponent: float, n: int) -> npt.NDArray[np.float64]:
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    out = np.fft.irfft(spectrum, n)
    return out / np.abs(out).max()


def sounds(rng: np.random.Generator) -> dict[str, Signal]:
    t = _t()
    n = t.size
    pink = 0.1 * _coloured(rng, 1.0, n)
    bursts = (np.sin(2 * np.pi * 0.5 * t) > 0).astype(float)
    # A siren or ringtone: 700 Hz swinging +-150 Hz three times a second (the phase is the
    # frequency's integral), in bursts of one second.
    warble = 0.3 * np.sin(2 * np.pi * 700 * t + 50 * (1 - np.cos(2 * np.pi * 3 * t))) * bursts
    # A tone swept ever wider until it folds over the whole band: a broadband sweeping whine.
    sweep = 0.3 * np.sin(2 * np.pi * (700 + 150 * np.sin(2 * np.pi * 3 * t)) * t) * bursts
    notes = 220 * 2 ** (np.array([0, 4, 7, 12, 7, 4]) / 12)
    step = np.minimum((t * 2).astype(int) % len(notes), len(notes) - 1)
    env = np.exp(-((t * 2) % 1) * 3)
    music = 0.25 * env * (np.sin(2 * np.pi * notes[step] * t) + 0.5 * np.sin(4 * np.pi * notes[step] * t))
    clicks = np.zeros(n)
    clicks[:: RATE // 3] = 0.9
    door = np.zeros(n)
    for start in range(RATE, n - RATE, 4 * RATE):
        k = np.arange(RATE // 2)
        door[start : start + k.size] = 0.8 * np.exp(-k / 800) * _coloured(rng, 2.0, k.size)
    keys = np.zeros(n)
    for start in rng.integers(0, n - 100, size=int(8 * SECONDS)):
        keys[start : start + 80] += 0.5 * rng.normal(size=80) * np.hanning(80)
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 400 * (t % 2) ** 2))
    out: dict[str, Any] = {
        "white noise": 0.05 * rng.normal(size=n),
        "pink noise + 220 Hz hum": pink + 0.05 * np.sin(2 * np.pi * 220 * t),
        "brown noise": 0.2 * _coloured(rng, 2.0, n),
        "warbling tone in bursts over pink noise": warble + pink,
        "sweeping whine in bursts over pink noise": sweep + pink,
        "chirps": chirp,
        "music-like arpeggio": music,
        "clicks": clicks,
        "door-like thumps": door,
        "keyboard-like bursts": keys,
    }
    return {k: np.clip(v, -1, 1).astype(np.float32) for k, v in out.items()}


def under(speech: Signal, noise: Signal, snr_db: float) -> Signal:
    """``speech`` with ``noise`` beneath it at ``snr_db`` (the noise trimmed or repeated to fit)."""
    noise = np.resize(noise, speech.shape[0]).astype(np.float64)
    gain = np.sqrt(np.mean(np.square(speech, dtype=np.float64)) / max(np.mean(noise**2), 1e-12) / 10 ** (snr_db / 10))
    return np.clip(speech + gain * noise, -1, 1).astype(np.float32)
