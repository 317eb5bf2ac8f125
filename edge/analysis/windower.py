"""Sliding A/V windows aligned on buffer timestamps.

Window ``k`` covers ``[t0 + k * hop, t0 + k * hop + length)`` in stream time, where ``t0`` is the
first timestamp seen. A window is complete once every active stream has delivered media past its
end. A stream that falls more than ``lag_tolerance_s`` behind the other (a microphone unplugged, a
camera frozen) stops holding windows back; those windows are flagged as missing that stream.
For files (``lag_tolerance_s=None``) streams are decoded at different speeds, so every stream is
waited for until the end of the file.
Audio is kept in one contiguous in-memory buffer trimmed to what open windows still need.
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

from contract.audio import SAMPLE_RATE
from edge.capture.frames import AudioChunk
from edge.results import FrameAnalysis, WindowInput


class Windower:
    def __init__(
        self,
        length_s: float,
        hop_s: float,
        *,
        expect_video: bool,
        expect_audio: bool,
        audio_rate: int = SAMPLE_RATE,
        lag_tolerance_s: float | None = 3.0,
        first_index: int = 0,
        segment_offset_s: float = 0.0,
    ) -> None:
        self.length_s = length_s
        self.hop_s = hop_s
        self.expect_video = expect_video
        self.expect_audio = expect_audio
        self.rate = audio_rate
        self.lag_tolerance_s = lag_tolerance_s
        self._t0: float | None = None
        self._first = first_index
        self._next = first_index
        self.segment_offset_s = segment_offset_s
        self._frames: deque[FrameAnalysis] = deque()
        self._video_end = -math.inf
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0.0  # stream time of self._audio[0]
        self._audio_end = -math.inf

    def _origin(self, t: float) -> None:
        if self._t0 is None:
            self._t0 = t
            self._audio_start = t

    def add_frame(self, analysis: FrameAnalysis) -> None:
        self._origin(analysis.pts_s)
        self._frames.append(analysis)
        self._video_end = max(self._video_end, analysis.pts_s)
        self.expect_video = True

    def add_audio(self, chunk: AudioChunk) -> None:
        self._origin(chunk.pts_s)
        if self._audio_end == -math.inf:  # first chunk: the buffer starts here
            self._audio_start = self._audio_end = chunk.pts_s
        gap = round((chunk.pts_s - self._audio_end) * self.rate)
        if gap > 0:  # a discontinuity: keep time aligned with silence
            self._audio = np.concatenate([self._audio, np.zeros(gap, dtype=np.float32)])
        samples = chunk.samples if gap >= 0 else chunk.samples[min(-gap, chunk.samples.shape[0]) :]
        self._audio = np.concatenate([self._audio, samples])
        self._audio_end = self._audio_start + self._audio.shape[0] / self.rate
        self.expect_audio = True

    @property
    def next_index(self) -> int:
        """Index the next window will get; a rebuilt capture continues from here."""
        return self._next

    def _bounds(self, k: int) -> tuple[float, float]:
        start = (self._t0 or 0.0) + (k - self._first) * self.hop_s
        return start, start + self.length_s

    def ready(self, *, flush: bool = False) -> list[WindowInput]:
        """Windows that are complete now. With ``flush`` (end of stream), every window that the
        media received so far covers to within one hop."""
        if self._t0 is None:
            return []
        progress = [
            end for end, on in ((self._video_end, self.expect_video), (self._audio_end, self.expect_audio)) if on
        ]
        if not progress:
            return []
        lead = max(progress)
        if self.lag_tolerance_s is None:  # files: every stream is waited for until the end
            horizon = min(progress)
        else:
            horizon = min(p for p in progress if p >= lead - self.lag_tolerance_s)
        if flush:
            horizon = lead + self.hop_s / 2
        out = []
        while True:
            start, end = self._bounds(self._next)
            if end > horizon:
                break
            out.append(self._cut(self._next, start, end))
            self._next += 1
        self._trim()
        return out

    def _cut(self, index: int, start: float, end: float) -> WindowInput:
        frames = tuple(f for f in self._frames if start <= f.pts_s < end)
        a = round((start - self._audio_start) * self.rate)
        b = round((end - self._audio_start) * self.rate)
        audio = self._audio[max(a, 0) : max(b, 0)].copy()
        real = audio.shape[0]
        if a < 0 and real:  # audio began inside this window: keep its timing
            audio = np.concatenate([np.zeros(min(-a, b - a), dtype=np.float32), audio])
        return WindowInput(
            index=index,
            origin_s=self._t0 or 0.0,
            segment_offset_s=self.segment_offset_s,
            start_s=start,
            end_s=end,
            frames=frames,
            audio=audio,
            audio_rate=self.rate,
            video_present=bool(frames) or self._video_end >= end,
            audio_present=real >= int(0.5 * (end - start) * self.rate),
            ready_monotonic=time.monotonic(),
        )

    def _trim(self) -> None:
        keep_from, _ = self._bounds(self._next)
        while self._frames and self._frames[0].pts_s < keep_from:
            self._frames.popleft()
        drop = int((keep_from - self._audio_start) * self.rate)
        if drop > 0:
            self._audio = self._audio[drop:]
            self._audio_start += drop / self.rate
