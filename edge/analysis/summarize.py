"""Turn a completed window into a :class:`WindowResult`.

Only the face channel gives class probabilities so far; the window's distribution is the mean of
its frames' face distributions. Voice contributes activity and level, which set quality flags.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np

from edge.analysis.results import (
    FLAG_CLIPPING,
    FLAG_LOW_LIGHT,
    FLAG_MULTIPLE_FACES,
    FLAG_NO_AUDIO,
    FLAG_NO_FACE,
    FLAG_NO_VIDEO,
    FLAG_SILENCE,
    FLAG_SMALL_FACE,
    FaceChannel,
    VoiceChannel,
    WindowResult,
)
from edge.analysis.windower import WindowInput
from edge.audio.features import LogMel
from edge.audio.vad import detect_voice
from edge.config.models import AudioConfig, VisionConfig
from edge.labels import CLASSES, mean_distribution

MIN_FACE_COVERAGE = 0.2  # below this share of frames with a face, the window has no face result
MULTI_FACE_SHARE = 0.3  # share of frames with several faces that flags the window
CLIPPED_SHARE = 0.001


class WindowSummarizer:
    def __init__(
        self,
        session_id: str,
        session_start: datetime,
        vision: VisionConfig,
        audio: AudioConfig,
    ) -> None:
        self.session_id = session_id
        self.session_start = session_start.astimezone(timezone.utc)
        self.vision = vision
        self.audio = audio
        self.logmel = LogMel(n_mels=audio.n_mels)

    def summarize(self, window: WindowInput) -> WindowResult:
        timing: dict[str, float] = {}
        flags: list[str] = []
        face = self._face(window, flags, timing)
        voice = self._voice(window, flags, timing)
        probs = face.probs if face is not None else None
        label = confidence = None
        if probs is not None:
            best = int(np.argmax(probs))
            label, confidence = CLASSES[best], float(probs[best])
        # Session time: stream time within the capture segment, plus when that segment began.
        start = window.start_s - window.origin_s + window.segment_offset_s
        end = window.end_s - window.origin_s + window.segment_offset_s
        started = self.session_start + timedelta(seconds=max(0.0, start))
        return WindowResult(
            session_id=self.session_id,
            index=window.index,
            start_s=round(start, 3),
            end_s=round(end, 3),
            started_at=started.isoformat(timespec="milliseconds"),
            probs=probs,
            label=label,
            confidence=confidence,
            face=face,
            voice=voice,
            flags=tuple(flags),
            timing_ms=timing,
            ready_monotonic=window.ready_monotonic,
        )

    def _face(self, window: WindowInput, flags: list[str], timing: dict[str, float]) -> FaceChannel | None:
        frames = window.frames
        if not window.video_present or not frames:
            flags.append(FLAG_NO_VIDEO)
            return None
        timing["face_detect_ms"] = round(sum(f.detect_ms for f in frames), 3)
        timing["face_classify_ms"] = round(sum(f.classify_ms for f in frames), 3)
        with_face = [f for f in frames if f.probs is not None]
        coverage = len(with_face) / len(frames)
        if sum(f.faces > 1 for f in frames) >= MULTI_FACE_SHARE * len(frames):
            flags.append(FLAG_MULTIPLE_FACES)
        if float(np.median([f.luma for f in frames])) < self.vision.low_light_luma:
            flags.append(FLAG_LOW_LIGHT)
        if coverage < MIN_FACE_COVERAGE:
            flags.append(FLAG_NO_FACE)
            probs = None
        else:
            probs = mean_distribution([f.probs.tolist() for f in with_face if f.probs is not None])
            if float(np.median([f.face_width_px for f in with_face])) < self.vision.min_face_px:
                flags.append(FLAG_SMALL_FACE)
        return FaceChannel(
            frames=len(frames),
            coverage=round(coverage, 4),
            max_faces=max(f.faces for f in frames),
            mean_detection_score=round(float(np.mean([f.detection_score for f in with_face])) if with_face else 0.0, 4),
            probs=probs,
        )

    def _voice(self, window: WindowInput, flags: list[str], timing: dict[str, float]) -> VoiceChannel | None:
        if not window.audio_present:
            flags.append(FLAG_NO_AUDIO)
            return None
        t0 = time.perf_counter()
        # Log-mel features drive voice activity (and the speech channel's models); memory only.
        mel = self.logmel(window.audio)
        activity = detect_voice(
            window.audio,
            mel,
            self.logmel.centres_hz,
            win=self.logmel.win,
            hop=self.logmel.hop,
            silence_dbfs=self.audio.silence_dbfs,
            margin_db=self.audio.vad_margin_db,
        )
        timing["audio_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        if activity.voiced_ratio < self.audio.min_voiced_ratio:
            flags.append(FLAG_SILENCE)
        if activity.clipped_ratio > CLIPPED_SHARE:
            flags.append(FLAG_CLIPPING)
        return VoiceChannel(
            voiced_ratio=round(activity.voiced_ratio, 4),
            level_dbfs=round(max(activity.level_dbfs, -120.0), 2),
            noise_floor_dbfs=round(max(activity.noise_floor_dbfs, -120.0), 2),
            clipped_ratio=round(activity.clipped_ratio, 5),
        )
