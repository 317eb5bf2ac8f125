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
from edge.channels.base import Channel, FrameContext, FrameModels, LoadedModels, Stateless, WindowContext
from edge.config.models import AppConfig
from edge.results import GOOD, MOUTH, FrameAnalysis, PulseChannel
from edge.vision.skin import SkinRegions, SkinSampler, read_skin

MIN_FPS = 4.0  # below this the pulse band cannot be sampled reliably


SKIN_MARGIN = 1.6  # side of the square the face mesh sees, relative to the detected face box


class SkinFrameHook:
    """Per frame: the mean skin colour of the client's forehead and cheeks (three numbers), from the
    MediaPipe face mesh on a margin around the client's face only."""

    def __init__(self, skin: SkinSampler, every: int = 1) -> None:
        self.skin = skin
        self.every = every  # channels.pulse.mesh_every
        self._since_mesh = 0  # analysed frames since the face mesh last ran
        # the last mesh's regions in frame coordinates, with the eyes' midpoint they belong to
        self._regions: tuple[SkinRegions, tuple[float, float]] | None = None

    def __call__(self, frame: FrameContext) -> None:
        t0 = time.perf_counter()
        if frame.face is None:
            self._regions = None
        else:
            frame.skin_rgb = self._skin(frame)
        frame.timing["skin_ms"] = (time.perf_counter() - t0) * 1e3

    def _skin(self, frame: FrameContext) -> tuple[float, float, float] | None:
        """Mean skin colour of the client's face: the face mesh runs on a margin around the detected
        box, so only the client's face (not another in the frame) is read. With
        ``channels.pulse.mesh_every`` N > 1 the mesh runs on every Nth frame; the frames between read
        the last mesh's regions moved with the midpoint of the detected eyes (steadier than the box's
        centre; the face's size changes too little in N/10 s to be worth following). A frame the mesh
        ran on also gets the mouth's opening (``values["mouth"]``), the speaker attribution's cue."""
        rgb, face = frame.rgb, frame.face
        if face is None:
            return None
        (rx, ry), (lx, ly) = face.right_eye, face.left_eye
        eyes = ((rx + lx) / 2, (ry + ly) / 2)
        if self._regions is not None and self._since_mesh < max(self.every, frame.reuse):
            self._since_mesh += 1
            regions, then = self._regions
            sample = read_skin(rgb, regions.moved(then, eyes))
            return sample.rgb if sample is not None else None
        self._regions = None
        h, w = rgb.shape[:2]
        cx, cy = face.x + face.w / 2, face.y + face.h / 2
        half = max(face.w, face.h) * SKIN_MARGIN / 2
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(cx + half) + 1, w), min(int(cy + half) + 1, h)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        found = self.skin.locate(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if found is None:
            return None
        if found.mouth is not None:
            frame.values[MOUTH] = round(found.mouth, 5)
        regions = found.moved((0.0, 0.0), (float(x0), float(y0)))  # crop -> frame coordinates
        self._regions, self._since_mesh = (regions, eyes), 1
        sample = read_skin(rgb, regions)
        return sample.rgb if sample is not None else None


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
    def frame_hook(self, config: AppConfig, models: FrameModels) -> SkinFrameHook | None:
        if not config.channels.pulse.enabled or models.skin is None:
            return None
        return SkinFrameHook(models.skin, config.channels.pulse.mesh_every)

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
