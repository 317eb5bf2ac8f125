"""The pulse channel: face-mesh skin regions + POS on generated videos whose skin colour is
modulated at a known rate; motion and no face give no number; the mesh on every Nth frame with
the regions moved with the face between."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from skimage import data

from clinic_signals.rppg import estimate_pulse
from edge.analysis.frame import FrameAnalyzer
from edge.capture.frames import VideoFrame
from edge.channels.pulse import SkinFrameHook
from edge.config.models import VisionConfig
from edge.vision import FaceDetector
from edge.vision.skin import SkinRegions, SkinSampler, read_skin

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


@pytest.mark.unit
def test_too_short_a_buffer_gives_no_number() -> None:
    rgb = np.full((60, 3), 150.0)
    assert estimate_pulse(rgb, np.ones(60, bool), FPS).reason == "too_short"


@pytest.mark.unit
@pytest.mark.parametrize("shift", [(0, 0), (25, -15), (-40, 30)])
def test_regions_moved_with_the_face_read_the_same_skin(shift: tuple[int, int]) -> None:
    """The frames between two mesh runs read the last regions moved by the face's displacement: on a
    shifted image, the moved regions read exactly the skin the mesh found on the original."""
    image = data.astronaut()
    sampler = SkinSampler()
    try:
        regions = sampler.locate(image)
    finally:
        sampler.close()
    assert regions is not None
    original = read_skin(image, regions)
    dx, dy = shift
    moved_image = np.roll(image, (dy, dx), axis=(0, 1))
    moved = read_skin(moved_image, regions.moved((0.0, 0.0), (float(dx), float(dy))))
    stale = read_skin(moved_image, regions)
    assert original is not None and moved is not None and stale is not None
    np.testing.assert_allclose(moved.rgb, original.rgb, atol=1e-9)
    assert moved.pixels == original.pixels
    if shift != (0, 0):  # regions left where they were read something else
        assert np.abs(np.subtract(stale.rgb, original.rgb)).max() > 1.0


class CountingSkinSampler(SkinSampler):
    """The real face mesh, counting how often it runs."""

    calls = 0

    def locate(self, rgb: npt.NDArray[np.uint8]) -> SkinRegions | None:
        self.calls += 1
        return super().locate(rgb)


def _analyzer(face_model: Path, every: int) -> tuple[FrameAnalyzer, CountingSkinSampler]:
    sampler = CountingSkinSampler()
    detector = FaceDetector("full", 0.5)
    return FrameAnalyzer(detector, VisionConfig(), hooks=[SkinFrameHook(sampler, every)]), sampler


@pytest.mark.unit
@pytest.mark.parametrize(
    ("every", "behind", "calls", "within"),
    [
        (1, False, 9, 3.0),
        (2, False, 5, 3.0),
        (3, False, 3, 3.0),
        # frames waiting for the analysis: every vision.behind_every (3) frames at most, and the
        # detection is reused too, so the regions follow eyes up to two frames old (the head here
        # drifts 2 px a frame, far more than a seated client)
        (1, True, 3, 4.0),
    ],
)
def test_mesh_runs_on_every_nth_frame_and_the_frames_between_follow_the_face(
    face_model: Path, every: int, behind: bool, calls: int, within: float
) -> None:
    image = data.astronaut()
    frames = [np.roll(image, (i, 2 * i), axis=(0, 1)) for i in range(9)]  # the head drifts
    reference, ref_sampler = _analyzer(face_model, 1)
    analyzer, sampler = _analyzer(face_model, every)
    try:
        expected = [reference.analyze(VideoFrame(i / 10, f)).skin_rgb for i, f in enumerate(frames)]
        got = [analyzer.analyze(VideoFrame(i / 10, f), behind=behind).skin_rgb for i, f in enumerate(frames)]
        assert sampler.calls == calls
        assert all(e is not None and g is not None for e, g in zip(expected, got, strict=True))
        # The same skin as a mesh on every frame, within the mesh's own jitter (about a grey level
        # from frame to frame here); regions left behind or misplaced would read hair or background.
        assert np.abs(np.array(got) - np.array(expected)).max() < within
        # A frame without a face drops the regions: the next face gets a new mesh, whatever the setting.
        assert analyzer.analyze(VideoFrame(1.0, data.coffee())).skin_rgb is None
        before = sampler.calls
        analyzer.analyze(VideoFrame(1.1, image))
        assert sampler.calls == before + 1
    finally:
        for a, s in ((reference, ref_sampler), (analyzer, sampler)):
            a.detector.close()
            s.close()


@pytest.mark.parametrize("every", [2, 3], ids=["every second", "every third"])
def test_pulse_rate_with_the_mesh_on_some_frames_of_a_drifting_head(face_model: Path, every: int) -> None:
    """84 bpm through the room's frame analysis, the mesh on every second or third frame, the head
    drifting 30 px over the clip."""
    analyzer, sampler = _analyzer(face_model, every)
    frames = _video(84.0, seed=3)
    try:
        rgb = [
            analyzer.analyze(VideoFrame(i / FPS, np.roll(f, (i // 12, i // 12), axis=(0, 1)))).skin_rgb
            for i, f in enumerate(frames)
        ]
    finally:
        analyzer.detector.close()
        sampler.close()
    assert sampler.calls == -(-len(frames) // every)
    valid = np.array([c is not None for c in rgb])
    colours = np.array([c if c is not None else (0.0, 0.0, 0.0) for c in rgb], dtype=np.float64)
    estimate = estimate_pulse(colours, valid, FPS)
    assert estimate.reason == "ok", estimate
    assert abs(estimate.bpm - 84.0) <= 3.0, estimate  # type: ignore[operator]
