"""Acoustic cues and arousal/valence of the voice, on synthetic voices with known properties and
on real synthesised speech (espeak-ng) at different rates, pitches and loudness."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from clinic_signals.prosody import (
    SpeakerBaseline,
    affect,
    analysis_frames,
    difference,
    difference_by_lag,
    voice_cues,
    yin_lags,
)
from contract.audio import SAMPLE_RATE as RATE
from export.data.inputs import read_wav


def _voice(
    f0: float,
    seconds: float = 2.0,
    *,
    jitter: float = 0.0,
    noise: float = 0.0,
    syllables_per_s: float = 0.0,
    seed: int = 0,
) -> npt.NDArray[np.float32]:
    """A glottal-pulse-like harmonic voice; optional period jitter, noise and syllable rhythm."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    t = 0.0
    while t < n:
        period = RATE / f0 * (1 + jitter * rng.normal())
        i = int(t)
        pulse = np.exp(-np.arange(min(int(period), n - i)) / (0.12 * period))
        out[i : i + pulse.size] += pulse
        t += period
    out = np.convolve(out, np.hanning(9), mode="same")
    if syllables_per_s:
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * syllables_per_s * np.arange(n) / RATE)
        out *= envelope
    out = 0.3 * out / np.abs(out).max()
    return (out + noise * rng.normal(size=n)).astype(np.float32)


@pytest.mark.parametrize("f0", [85.0, 120.0, 180.0, 260.0, 350.0])
def test_pitch_is_measured_within_one_percent(f0: float) -> None:
    cues = voice_cues(_voice(f0))
    assert cues is not None
    assert abs(100 * 2 ** (cues.pitch_st / 12) - f0) / f0 < 0.01
    assert cues.pitch_var_st < 0.2


def test_jitter_grows_with_period_irregularity() -> None:
    steady, rough = voice_cues(_voice(140.0)), voice_cues(_voice(140.0, jitter=0.03))
    assert steady is not None and rough is not None
    assert rough.jitter > 3 * max(steady.jitter, 1e-4)


def test_hnr_falls_as_noise_rises() -> None:
    hnr = []
    for noise in (0.0, 0.01, 0.02, 0.03):
        cues = voice_cues(_voice(150.0, noise=noise))
        assert cues is not None
        hnr.append(cues.hnr_db)
    assert hnr == sorted(hnr, reverse=True) and hnr[0] - hnr[-1] > 8.0, hnr
    assert voice_cues(_voice(150.0, noise=0.2)) is None  # noise, not voice


@pytest.mark.parametrize("rate", [3.0, 5.0, 7.0])
def test_speaking_rate_counts_syllable_nuclei(rate: float) -> None:
    cues = voice_cues(_voice(150.0, seconds=3.0, syllables_per_s=rate))
    assert cues is not None and abs(cues.rate_sps - rate) <= 1.0, cues.rate_sps


def test_silence_has_no_cues() -> None:
    assert voice_cues(np.zeros(RATE * 2, dtype=np.float32)) is None
    assert voice_cues((0.001 * np.random.default_rng(0).normal(size=RATE)).astype(np.float32)) is None


def _espeak(tmp: Path, text: str, *, speed: int, pitch: int, amplitude: int, name: str) -> npt.NDArray[np.float32]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is not installed: run scripts/setup.sh")
    path = tmp / f"{name}.wav"
    subprocess.run([exe, "-w", str(path), "-s", str(speed), "-p", str(pitch), "-a", str(amplitude), text], check=True)
    return read_wav(path)


def test_activated_speech_has_higher_arousal_than_calm_speech(tmp_path: Path) -> None:
    text = "I went to the market this morning and bought some bread and apples for the week."
    baseline = SpeakerBaseline()
    for i, (speed, pitch) in enumerate([(150, 45), (160, 50), (145, 50), (155, 40), (150, 55), (165, 45)]):
        cues = voice_cues(_espeak(tmp_path, text, speed=speed, pitch=pitch, amplitude=100, name=f"n{i}"))
        assert cues is not None
        baseline.update(cues)
    activated = voice_cues(_espeak(tmp_path, text, speed=230, pitch=85, amplitude=190, name="hi"))
    calm = voice_cues(_espeak(tmp_path, text, speed=100, pitch=20, amplitude=40, name="lo"))
    assert activated is not None and calm is not None
    assert activated.rate_sps > calm.rate_sps and activated.pitch_st > calm.pitch_st
    assert activated.loudness_db > calm.loudness_db + 6
    high = affect(activated, baseline)
    low = affect(calm, baseline)
    assert high.arousal > 0.3 and low.arousal < -0.3, (high, low)
    assert 0 < low.confidence <= 1


def _signal(kind: str) -> npt.NDArray[np.float32]:
    t = np.arange(RATE // 2) / RATE
    rng = np.random.default_rng(3)
    signals = {
        "voice": _voice(140.0, 0.5, jitter=0.01),
        "sine": 0.5 * np.sin(2 * np.pi * 220.0 * t),
        "chirp": 0.3 * np.sin(2 * np.pi * (80.0 + 300.0 * t) * t),
        "noise": 0.1 * rng.standard_normal(t.size),
        "silence": np.zeros(t.size),
        "clipped": np.clip(3.0 * np.sin(2 * np.pi * 95.0 * t), -1.0, 1.0),
    }
    return signals[kind].astype(np.float32)


@pytest.mark.parametrize("kind", ["voice", "sine", "chirp", "noise", "silence", "clipped"])
def test_fft_difference_function_is_the_definition(kind: str) -> None:
    """YIN's d(tau) by FFT equals the sum of squared differences it stands for, lag by lag."""
    rows = analysis_frames(_signal(kind)).astype(np.float64)
    w, taus = yin_lags(rows.shape[1])
    assert taus == 268  # lags up to a 60 Hz period (266 samples) and one more
    np.testing.assert_allclose(difference(rows, w, taus), difference_by_lag(rows, w, taus), rtol=1e-9, atol=1e-9 * w)
