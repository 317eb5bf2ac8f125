"""Window summaries: distributions and quality flags from per-frame results and audio."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from contract.classes import CLASSES
from edge.analysis.summarize import WindowSummarizer
from edge.config.models import AudioConfig, VisionConfig
from edge.results import FrameAnalysis, WindowInput

RATE = 16_000
HAPPY = np.array([0.05, 0, 0.8, 0.05, 0.05, 0.025, 0, 0.025], dtype=np.float32)
SAD = np.array([0.1, 0, 0, 0.7, 0.1, 0.05, 0.05, 0], dtype=np.float32)


def _frames(
    n: int = 25, *, faces: int = 1, width: float = 90.0, luma: float = 120.0, probs: np.ndarray | None = HAPPY
) -> list[FrameAnalysis]:
    return [
        FrameAnalysis(
            10.0 + i / 10,
            faces,
            width if faces else 0.0,
            0.9 if faces else 0.0,
            probs if faces else None,
            luma,
            1.0,
            1.0,
        )
        for i in range(n)
    ]


def _speech_like(seconds: float = 2.5, *, amplitude: float = 0.2) -> np.ndarray:
    """Bursts of a 300 Hz harmonic tone (0.2 s on, 0.2 s off) over faint noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = amplitude * (np.sin(2 * np.pi * 300 * t) + 0.5 * np.sin(2 * np.pi * 900 * t))
    gate = (np.floor(t / 0.2) % 2 == 0).astype(np.float32)
    return (tone * gate + np.random.default_rng(0).normal(0, 1e-4, t.shape[0])).astype(np.float32)


def _window(frames: list[FrameAnalysis], audio: np.ndarray | None, *, video: bool = True) -> WindowInput:
    return WindowInput(
        index=3,
        origin_s=7.0,
        segment_offset_s=0.0,
        start_s=10.0,
        end_s=12.5,
        frames=tuple(frames),
        audio=audio if audio is not None else np.zeros(0, dtype=np.float32),
        audio_rate=RATE,
        video_present=video,
        audio_present=audio is not None,
        ready_monotonic=0.0,
    )


@pytest.fixture
def summarizer() -> WindowSummarizer:
    # Tones stand in for a voice here (these tests are of the summary's flags and labels): the energy rule
    # hears them; the learned default does not (tests/test_voice_activity.py).
    audio = AudioConfig(vad="energy")
    return WindowSummarizer("s-1", datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc), VisionConfig(), audio)


# A face of doubtful quality (small, dark, or not alone) keeps its own distribution but is left out
# of the fused result, so such a window has no label from the face.
@pytest.mark.unit
@pytest.mark.parametrize(
    ("frames", "audio", "video", "flags", "label"),
    [
        (_frames(), _speech_like(), True, set(), "happy"),
        (_frames(faces=0), _speech_like(), True, {"no_face"}, None),
        (_frames(faces=2), _speech_like(), True, {"multiple_faces"}, None),
        (_frames(width=30.0), _speech_like(), True, {"small_face"}, None),
        (_frames(luma=20.0), _speech_like(), True, {"low_light"}, None),
        (_frames(probs=SAD), np.zeros(2 * RATE + RATE // 2, dtype=np.float32), True, {"silence"}, "sad"),
        (_frames(), np.clip(_speech_like(amplitude=3.0), -1, 1), True, {"audio_clipping"}, "happy"),
        ([], _speech_like(), False, {"no_video"}, None),
        (_frames(), None, True, {"no_audio"}, "happy"),
    ],
)
def test_flags_and_label(
    summarizer: WindowSummarizer,
    frames: list[FrameAnalysis],
    audio: np.ndarray | None,
    video: bool,
    flags: set[str],
    label: str | None,
) -> None:
    (result,) = summarizer.summarize(_window(frames, audio, video=video))
    assert set(result.flags) == flags
    assert result.label == label
    if result.face is not None:
        face_flags = flags & {"no_face", "multiple_faces", "small_face", "low_light"}
        assert result.face.quality == (face_flags.pop() if face_flags else "good")
        assert (result.face.probs is None) == ("no_face" in flags)
        assert result.fused == (("face",) if result.face.quality == "good" else ())
    if label is not None:
        assert result.probs is not None
        assert sum(result.probs) == pytest.approx(1.0, abs=1e-6)
        assert CLASSES[int(np.argmax(result.probs))] == label


@pytest.mark.unit
def test_times_are_relative_to_the_session(summarizer: WindowSummarizer) -> None:
    (result,) = summarizer.summarize(_window(_frames(), _speech_like()))
    assert (result.start_s, result.end_s) == (3.0, 5.5)
    assert result.started_at == "2026-03-01T09:00:03.000+00:00"


@pytest.mark.unit
def test_mixed_frames_average_and_coverage(summarizer: WindowSummarizer) -> None:
    frames = _frames(10, probs=HAPPY) + _frames(10, probs=SAD) + _frames(5, faces=0)
    (result,) = summarizer.summarize(_window(frames, _speech_like()))
    assert result.face is not None
    assert result.face.coverage == pytest.approx(0.8)
    assert result.probs is not None
    expected = (HAPPY + SAD) / 2
    assert np.allclose(result.probs, expected / expected.sum(), atol=1e-4)
    assert result.voice is not None
    assert 0.3 < result.voice.voiced_ratio < 0.7
