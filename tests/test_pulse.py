"""The pulse channel: face-mesh skin regions + POS on generated videos whose skin colour is
modulated at a known rate; motion and no face give no number."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from skimage import data

from clinic_signals.rppg import estimate_pulse
from edge.vision.skin import SkinSampler

FPS = 30.0
SECONDS = 12.0
# Relative colour change of skin per unit blood volume (Wang et al. 2017, the PBV signature).
PBV = np.array([0.33, 0.77, 0.53])


def _video(bpm: float, *, amplitude: float = 0.01, seed: int = 0, motion: bool = False) -> list[npt.NDArray[np.uint8]]:
    """The astronaut photograph (a real face) with its colour modulated by a pulse, sensor noise,
    and optionally large head movements with flickering light."""
    rng = np.random.default_rng(seed)
    base = data.astronaut().astype(np.float32)
    frames = []
    for i in range(int(FPS * SECONDS)):
        t = i / FPS
        gain = 1 + amplitude * np.sin(2 * np.pi * bpm / 60 * t) * PBV
        frame = base * gain.astype(np.float32)
        if motion:
            frame = np.roll(frame, (int(rng.integers(-40, 40)), int(rng.integers(-40, 40))), axis=(0, 1))
            frame *= np.float32(1 + rng.uniform(-0.08, 0.08))
        frame += rng.normal(0, 2.0, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def _run(frames: list[npt.NDArray[np.uint8]]) -> object:
    sampler = SkinSampler()
    try:
        samples = [sampler.sample(f) for f in frames]
    finally:
        sampler.close()
    valid = np.array([s is not None for s in samples])
    rgb = np.array([s.rgb if s is not None else (0.0, 0.0, 0.0) for s in samples], dtype=np.float64)
    return estimate_pulse(rgb, valid, FPS)


@pytest.mark.parametrize("bpm", [60.0, 84.0, 102.0, 120.0])
def test_pulse_rate_of_a_generated_video_is_within_three_bpm(bpm: float) -> None:
    estimate = _run(_video(bpm, seed=int(bpm)))
    assert estimate.reason == "ok", estimate  # type: ignore[attr-defined]
    assert abs(estimate.bpm - bpm) <= 3.0, estimate  # type: ignore[attr-defined]
    assert estimate.quality > 0.5  # type: ignore[attr-defined]


def test_motion_gives_low_quality_not_a_number() -> None:
    estimate = _run(_video(72.0, motion=True))
    assert estimate.bpm is None and estimate.reason in ("motion", "low_snr"), estimate  # type: ignore[attr-defined]
    assert estimate.quality < 0.5  # type: ignore[attr-defined]


def test_no_face_gives_no_number() -> None:
    grey = [np.full((480, 640, 3), 120, dtype=np.uint8) for _ in range(int(FPS * SECONDS))]
    estimate = _run(grey)
    assert estimate.bpm is None and estimate.reason == "no_face" and estimate.face_ratio == 0.0  # type: ignore[attr-defined]


def test_too_short_a_buffer_gives_no_number() -> None:
    rgb = np.full((60, 3), 150.0)
    assert estimate_pulse(rgb, np.ones(60, bool), FPS).reason == "too_short"
