"""The pulse channel: the client's mean skin colour per analysed frame, kept for ``window_s``
seconds, and a pulse rate with its quality from :func:`clinic_signals.rppg.estimate_pulse` (POS).

Frames arrive at the analysis rate, which load can make uneven; the record is resampled onto an
even time grid before the estimate. A rebuilt capture starts a new record (its clock restarts).
Only three numbers per frame are kept, never pixels.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import numpy as np
from typing_extensions import override

from clinic_signals.rppg import estimate_pulse
from contract.payload import PulseSummary
from edge.channels.base import Channel, LoadedModels, Stateless, WindowContext
from edge.config.models import AppConfig
from edge.results import GOOD, FrameAnalysis, PulseChannel

MIN_FPS = 4.0  # below this the pulse band cannot be sampled reliably


class PulseTracker(Stateless):
    def __init__(self, window_s: float, min_snr_db: float) -> None:
        self.window_s = window_s
        self.min_snr_db = min_snr_db
        self._samples: deque[tuple[float, tuple[float, float, float] | None]] = deque()
        self._origin: float | None = None

    def add(self, frames: tuple[FrameAnalysis, ...], origin_s: float) -> None:
        """Add a window's frames; those already seen (windows overlap) are skipped."""
        if self._origin != origin_s:
            self._samples.clear()
            self._origin = origin_s
        last = self._samples[-1][0] if self._samples else -np.inf
        for f in frames:
            if f.pts_s > last:
                self._samples.append((f.pts_s, f.skin_rgb))
                last = f.pts_s
        while self._samples and self._samples[0][0] < last - self.window_s:
            self._samples.popleft()

    def analyze(self, context: WindowContext) -> PulseChannel:
        t0 = time.perf_counter()
        self.add(context.window.frames, context.window.origin_s)
        pulse = self.estimate()
        context.timing["skin_ms"] = round(sum(f.skin_ms for f in context.window.frames), 3)
        context.timing["pulse_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return pulse

    def estimate(self) -> PulseChannel:
        times = np.array([t for t, _ in self._samples], dtype=np.float64)
        span = float(times[-1] - times[0]) if times.size > 1 else 0.0
        fps = (times.size - 1) / span if span > 0 else 0.0
        if times.size < 2 or fps < MIN_FPS:
            return PulseChannel(None, -100.0, 0.0, 0.0, round(span, 2), "too_short")
        valid = np.array([rgb is not None for _, rgb in self._samples])
        rgb = np.array([rgb if rgb is not None else (0.0, 0.0, 0.0) for _, rgb in self._samples], dtype=np.float64)
        grid = times[0] + np.arange(int(span * fps) + 1) / fps
        if valid.sum() >= 2:
            even = np.stack([np.interp(grid, times[valid], rgb[valid, c]) for c in range(3)], axis=1)
        else:
            even = np.zeros((grid.size, 3))
        nearest = np.clip(np.searchsorted(times, grid), 0, times.size - 1)
        estimate = estimate_pulse(
            even, valid[nearest], fps, min_seconds=self.window_s * 0.9, min_snr_db=self.min_snr_db
        )
        return PulseChannel(
            bpm=estimate.bpm,
            snr_db=round(estimate.snr_db, 2),
            signal_quality=round(estimate.quality, 3),
            face_ratio=round(estimate.face_ratio, 3),
            seconds=round(span, 2),
            quality="good" if estimate.reason == "ok" else estimate.reason,
        )


class Pulse(Channel):
    """Pulse is shown, not fused: it has no class distribution."""

    name = "pulse"
    result = PulseChannel
    stages = ("pulse",)
    summary_model = PulseSummary

    @override
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> PulseTracker | None:
        pulse = config.channels.pulse
        return PulseTracker(pulse.window_s, pulse.min_snr_db) if pulse.enabled else None

    @override
    def valence(self, result: PulseChannel | None) -> float | None:
        return None

    @override
    def present(self, result: PulseChannel | None) -> bool:
        return result is not None and result.quality not in ("no_face", "too_short")

    @override
    def summarize(self, results: Sequence[PulseChannel]) -> PulseSummary:
        good = [p for p in results if p.quality == GOOD and p.bpm is not None]
        if good:
            return PulseSummary(
                quality=GOOD,
                bpm=round(float(np.median([p.bpm for p in good if p.bpm is not None])), 1),
                snr_db=round(float(np.median([p.snr_db for p in good])), 2),
            )
        last = results[-1]
        return PulseSummary(quality=last.quality, bpm=None, snr_db=max(last.snr_db, -100.0))
