"""Sliding windows aligned on timestamps."""

from __future__ import annotations

import numpy as np
import pytest

from edge.analysis.windower import Windower
from edge.capture.frames import AudioChunk
from edge.results import FrameAnalysis

RATE = 16_000


def _frame(t: float) -> FrameAnalysis:
    return FrameAnalysis(t, 1, 80.0, 0.9, np.full(8, 0.125, dtype=np.float32), 120.0, 1.0, 1.0)


def _feed(w: Windower, seconds: float, *, t0: float = 5.0, video: bool = True, audio: bool = True) -> None:
    for i in range(int(seconds * 10)):
        t = t0 + i / 10
        if video:
            w.add_frame(_frame(t))
        if audio:
            w.add_audio(AudioChunk(t, np.full(RATE // 10, i, dtype=np.float32), RATE))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("length", "hop", "seconds", "expected"),
    [
        (2.5, 1.0, 6.0, 4),  # windows end at 2.5, 3.5, 4.5, 5.5 (media reaches 6.0)
        (2.5, 2.5, 6.0, 2),
        (1.0, 0.5, 3.0, 4),  # ends 6.0, 6.5, 7.0, 7.5 (video reaches 7.9)
    ],
)
def test_window_count_and_bounds(length: float, hop: float, seconds: float, expected: int) -> None:
    w = Windower(length, hop, expect_video=True, expect_audio=True, lag_tolerance_s=None)
    _feed(w, seconds)
    windows = w.ready()
    assert len(windows) == expected
    for k, win in enumerate(windows):
        assert win.start_s == pytest.approx(5.0 + k * hop)
        assert win.end_s - win.start_s == pytest.approx(length)
        assert win.audio.shape[0] == round(length * RATE)
        assert len(win.frames) == round(length * 10)
        assert all(win.start_s <= f.pts_s < win.end_s for f in win.frames)


@pytest.mark.unit
def test_audio_is_cut_on_timestamps() -> None:
    w = Windower(2.5, 1.0, expect_video=True, expect_audio=True, lag_tolerance_s=None)
    _feed(w, 5.0)
    windows = w.ready()
    # chunk i holds the value i and starts at 5.0 + i/10: window k starts with chunk 10k
    for k, win in enumerate(windows):
        assert win.audio[0] == 10 * k
        assert win.audio[-1] == 10 * k + 24


@pytest.mark.unit
def test_gap_in_audio_is_filled_with_silence_to_keep_alignment() -> None:
    w = Windower(2.5, 2.5, expect_video=False, expect_audio=True)
    w.add_audio(AudioChunk(0.0, np.ones(RATE, dtype=np.float32), RATE))
    w.add_audio(AudioChunk(2.0, np.ones(RATE, dtype=np.float32), RATE))  # 1 s missing
    (win,) = w.ready()
    assert win.audio.shape[0] == round(2.5 * RATE)
    assert win.audio[RATE : 2 * RATE].max() == 0.0
    assert win.audio[2 * RATE :].min() == 1.0


@pytest.mark.unit
def test_a_stalled_live_stream_stops_holding_windows_back() -> None:
    w = Windower(2.5, 1.0, expect_video=True, expect_audio=True, lag_tolerance_s=3.0)
    _feed(w, 1.0)  # both streams for 1 s
    _feed(w, 8.0, t0=6.0, audio=False)  # then video only until t=14
    windows = w.ready()
    assert windows, "windows must not wait forever for the missing microphone"
    assert not windows[-1].audio_present
    assert windows[0].video_present


@pytest.mark.unit
def test_file_streams_wait_for_each_other() -> None:
    w = Windower(2.5, 1.0, expect_video=True, expect_audio=True, lag_tolerance_s=None)
    _feed(w, 10.0, video=False)  # audio decoded far ahead
    _feed(w, 1.0, audio=False)  # video still at 1 s
    assert w.ready() == []


@pytest.mark.unit
def test_flush_emits_the_windows_the_media_covers() -> None:
    w = Windower(2.5, 1.0, expect_video=True, expect_audio=True, lag_tolerance_s=None)
    _feed(w, 4.0)
    assert len(w.ready()) == 2  # [5, 7.5) and [6, 8.5) are complete when video reaches 8.9
    flushed = w.ready(flush=True)
    assert [round(x.start_s, 1) for x in flushed] == [7.0]  # [7, 9.5) is covered to within half a hop


@pytest.mark.unit
def test_memory_is_trimmed_to_open_windows() -> None:
    w = Windower(2.5, 1.0, expect_video=True, expect_audio=True, lag_tolerance_s=None)
    _feed(w, 60.0)
    w.ready()
    assert len(w._frames) <= 40
    assert w._audio.shape[0] <= 4 * RATE
