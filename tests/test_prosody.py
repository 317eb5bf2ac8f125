"""Acoustic cues and arousal/valence of the voice, on synthetic voices with known properties and
on real synthesised speech (espeak-ng) at different rates, pitches and loudness."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import parselmouth
import pytest
from parselmouth.praat import call

from clinic_signals.prosody import SpeakerBaseline, affect, voice_cues
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


@pytest.mark.unit
@pytest.mark.parametrize("f0", [85.0, 120.0, 180.0, 260.0, 350.0])
def test_pitch_is_measured_within_one_percent(f0: float) -> None:
    cues = voice_cues(_voice(f0))
    assert cues is not None
    assert abs(100 * 2 ** (cues.pitch_st / 12) - f0) / f0 < 0.01
    assert cues.pitch_var_st < 0.2


@pytest.mark.unit
def test_jitter_grows_with_period_irregularity() -> None:
    steady, rough = voice_cues(_voice(140.0)), voice_cues(_voice(140.0, jitter=0.03))
    assert steady is not None and rough is not None
    assert rough.jitter > 3 * max(steady.jitter, 1e-4)


@pytest.mark.unit
def test_hnr_falls_as_noise_rises() -> None:
    hnr = []
    for noise in (0.0, 0.01, 0.02, 0.03):
        cues = voice_cues(_voice(150.0, noise=noise))
        assert cues is not None
        hnr.append(cues.hnr_db)
    assert hnr == sorted(hnr, reverse=True) and hnr[0] - hnr[-1] > 8.0, hnr
    assert voice_cues(_voice(150.0, noise=0.2)) is None  # noise, not voice


@pytest.mark.unit
@pytest.mark.parametrize("rate", [3.0, 5.0, 7.0])
def test_speaking_rate_counts_syllable_nuclei(rate: float) -> None:
    cues = voice_cues(_voice(150.0, seconds=3.0, syllables_per_s=rate))
    assert cues is not None and abs(cues.rate_sps - rate) <= 1.0, cues.rate_sps


@pytest.mark.unit
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


@pytest.mark.unit
def test_cues_are_praat_s_own_on_real_speech() -> None:
    """Pitch, jitter, shimmer and HNR are Praat's (parselmouth), measured here independently with
    Praat's standard voice report on jfk.wav windows: the same numbers."""
    speech = read_wav(Path(__file__).parent / "data" / "jfk.wav")
    for start in range(0, speech.shape[0] - 40_000, 32_000):
        window = speech[start : start + 40_000]
        cues = voice_cues(window)
        assert cues is not None
        sound = parselmouth.Sound(window.astype(np.float64), sampling_frequency=RATE)
        pitch = sound.to_pitch_ac(time_step=0.01, pitch_floor=60.0, pitch_ceiling=400.0)
        f0 = pitch.selected_array["frequency"]
        points = call(sound, "To PointProcess (periodic, cc)", 60.0, 400.0)
        jitter = call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
        shimmer = call([sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
        assert abs(100 * 2 ** (cues.pitch_st / 12) - np.median(f0[f0 > 0])) < 0.05 * np.median(f0[f0 > 0])
        assert cues.jitter == pytest.approx(jitter, rel=0.25)  # Praat's periods from the same pitch, or its own
        assert cues.shimmer == pytest.approx(shimmer, rel=0.25)
        harmonicity = sound.to_harmonicity_ac(time_step=0.01, minimum_pitch=60.0, periods_per_window=4.5).values
        assert cues.hnr_db == pytest.approx(float(np.median(harmonicity[harmonicity > -200])), abs=4.0)
