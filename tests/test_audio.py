"""Log-mel features and voice activity on synthetic signals and real synthesised speech."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from edge.audio import LogMel, detect_voice

RATE = 16_000


def _activity(signal: np.ndarray) -> object:
    mel = LogMel(n_mels=64)
    return detect_voice(
        signal.astype(np.float32),
        mel(signal.astype(np.float32)),
        mel.centres_hz,
        win=mel.win,
        hop=mel.hop,
        silence_dbfs=-50.0,
        margin_db=10.0,
    )


def _speech(tmp_path: Path) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed: run scripts/setup.sh")
    out = tmp_path / "speech.wav"
    subprocess.run([espeak, "-w", str(out), "I feel much better this week, thank you."], check=True)
    with wave.open(str(out)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
        rate = w.getframerate()
    # resample to 16 kHz by linear interpolation (enough for a level test)
    t = np.arange(int(raw.shape[0] * RATE / rate)) / RATE
    return np.interp(t, np.arange(raw.shape[0]) / rate, raw).astype(np.float32)


@pytest.mark.unit
def test_logmel_shape_and_tone_location() -> None:
    mel = LogMel(n_mels=64)
    t = np.arange(RATE) / RATE
    feats = mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert feats.shape == (1 + (RATE - 400) // 160, 64)
    peak_band = int(np.argmax(feats.mean(axis=0)))
    assert abs(mel.centres_hz[peak_band] - 1000) < 120


@pytest.mark.unit
def test_silence_has_no_voice() -> None:
    rng = np.random.default_rng(0)
    act = _activity(rng.normal(0, 1e-4, RATE * 2))
    assert act.voiced_ratio == 0.0
    assert act.level_dbfs < -70


@pytest.mark.unit
def test_steady_hum_is_not_voice() -> None:
    t = np.arange(RATE * 2) / RATE
    act = _activity(0.3 * np.sin(2 * np.pi * 50 * t))
    assert act.voiced_ratio < 0.05
    assert act.level_dbfs > -15


def test_speech_with_pauses_is_voiced(tmp_path: Path) -> None:
    speech = _speech(tmp_path)
    rng = np.random.default_rng(1)
    padded = np.concatenate([np.zeros(RATE // 2), speech, np.zeros(RATE // 2)]) + rng.normal(
        0, 1e-3, speech.shape[0] + RATE
    )
    act = _activity(padded)
    assert 0.3 < act.voiced_ratio < 0.95
    assert act.clipped_ratio == 0.0


@pytest.mark.unit
def test_clipping_is_measured() -> None:
    t = np.arange(RATE) / RATE
    act = _activity(np.clip(3 * np.sin(2 * np.pi * 300 * t), -1, 1))
    assert act.clipped_ratio > 0.3
