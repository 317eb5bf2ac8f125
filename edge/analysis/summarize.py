"""Turn a completed window into a :class:`WindowResult`.

Channels: the face (mean of the frames' face distributions), the voice (activity, acoustic cues and
the pack's speech model when there is one), the words (utterances transcribed as they end) and the
pulse (skin colour over the last ``channels.pulse.window_s`` seconds). Each reports its own quality
and latency; the window's distribution is the late fusion of the channels that are present and
good (:mod:`edge.fusion`), with each channel's Shapley contribution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from contract.classes import mean_distribution
from edge.analysis.windower import WindowInput
from edge.audio.features import LogMel
from edge.audio.vad import detect_voice
from edge.channels.pulse import PulseTracker
from edge.channels.voice import VoiceAnalyzer, activity_only
from edge.channels.words import WordsAnalyzer
from edge.config.models import AudioConfig, FusionConfig, VisionConfig
from edge.disparity.score import DisparityTracker, disparity
from edge.explain.policy import Explainer
from edge.fusion.decide import WindowFusion, channel_votes
from edge.fusion.late import LateFusion
from edge.results import (
    FLAG_CLIPPING,
    FLAG_LOW_LIGHT,
    FLAG_MULTIPLE_FACES,
    FLAG_NO_AUDIO,
    FLAG_NO_FACE,
    FLAG_NO_VIDEO,
    FLAG_SILENCE,
    FLAG_SMALL_FACE,
    DisparityEvent,
    FaceChannel,
    FaceQuality,
    PulseChannel,
    Utterance,
    VoiceChannel,
    WindowResult,
    WordsChannel,
)

MIN_FACE_COVERAGE = 0.2  # below this share of frames with a face, the window has no face result
MULTI_FACE_SHARE = 0.3  # share of frames with several faces that flags the window


@dataclass
class SessionChannels:
    """The per-session state of the optional channels; None where the room switched one off."""

    voice: VoiceAnalyzer | None = None
    words: WordsAnalyzer | None = None
    pulse: PulseTracker | None = None
    fusion: WindowFusion = field(default_factory=lambda: WindowFusion(LateFusion({}), FusionConfig()))
    disparity: DisparityTracker | None = None
    explainer: Explainer | None = None


@dataclass(frozen=True)
class SessionTail:
    """What the end of a session still produces: speech that was going on, a disparity still running."""

    utterances: list[Utterance]
    events: list[DisparityEvent]


class WindowSummarizer:
    def __init__(
        self,
        session_id: str,
        session_start: datetime,
        vision: VisionConfig,
        audio: AudioConfig,
        channels: SessionChannels | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_start = session_start.astimezone(timezone.utc)
        self.vision = vision
        self.audio = audio
        self.channels = channels or SessionChannels()
        self.logmel = LogMel(n_mels=audio.n_mels)

    def summarize(self, window: WindowInput) -> WindowResult:
        timing: dict[str, float] = {}
        flags: list[str] = []
        # Session time: stream time within the capture segment, plus when that segment began.
        start = window.start_s - window.origin_s + window.segment_offset_s
        end = window.end_s - window.origin_s + window.segment_offset_s
        face = self._face(window, flags, timing)
        voice, transcript = self._voice(window, start, flags, timing)
        words = self._words(start, end)
        pulse = self._pulse(window, timing)
        t0 = time.perf_counter()
        fusion = self.channels.fusion(channel_votes(face, voice, words))
        timing["fusion_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        score = event = None
        if self.channels.disparity is not None:
            score = disparity(face, voice, words)
            event = self.channels.disparity.add(round(start, 3), round(end, 3), score)
        explanation = None
        explainer = self.channels.explainer
        if explainer is not None:
            reason = explainer.reason(state=fusion.state, disparity=score, ready_monotonic=window.ready_monotonic)
            if reason is not None:
                overlapping = (
                    [u for u in self.channels.words.recent() if u.start_s < end and u.end_s > start]
                    if self.channels.words is not None
                    else []
                )
                explanation = explainer.explain(
                    reason, frames=window.frames, face=face, audio=window.audio, voice=voice, utterances=overlapping
                )
                timing.update(explanation.cost_ms)
        started = self.session_start + timedelta(seconds=max(0.0, start))
        return WindowResult(
            session_id=self.session_id,
            index=window.index,
            start_s=round(start, 3),
            end_s=round(end, 3),
            started_at=started.isoformat(timespec="milliseconds"),
            probs=fusion.probs,
            label=fusion.label,
            confidence=fusion.confidence,
            face=face,
            voice=voice,
            flags=tuple(flags),
            timing_ms=timing,
            ready_monotonic=window.ready_monotonic,
            words=words,
            pulse=pulse,
            fused=fusion.used,
            transcript=transcript,
            state=fusion.state,
            second=fusion.second,
            contributions=fusion.contributions,
            fusion_method=fusion.method,
            disparity=score,
            events=(event,) if event is not None else (),
            explanation=explanation,
        )

    def finish(self) -> SessionTail:
        """At the end of a session: transcribe speech that was still going on, close a running disparity."""
        utterances = self.channels.words.finish() if self.channels.words is not None else []
        event = self.channels.disparity.close() if self.channels.disparity is not None else None
        return SessionTail(utterances, [event] if event is not None else [])

    def close(self) -> None:
        """End the session's worker threads (transcription)."""
        if self.channels.words is not None:
            self.channels.words.close()

    def _face(self, window: WindowInput, flags: list[str], timing: dict[str, float]) -> FaceChannel | None:
        frames = window.frames
        if not window.video_present or not frames:
            flags.append(FLAG_NO_VIDEO)
            return None
        timing["face_detect_ms"] = round(sum(f.detect_ms for f in frames), 3)
        timing["face_classify_ms"] = round(sum(f.classify_ms for f in frames), 3)
        with_face = [f for f in frames if f.faces > 0]
        coverage = len(with_face) / len(frames)
        if sum(f.faces > 1 for f in frames) >= MULTI_FACE_SHARE * len(frames):
            flags.append(FLAG_MULTIPLE_FACES)
        if float(np.median([f.luma for f in frames])) < self.vision.low_light_luma:
            flags.append(FLAG_LOW_LIGHT)
        probs = None
        if coverage < MIN_FACE_COVERAGE:
            flags.append(FLAG_NO_FACE)
        else:
            probs = mean_distribution([f.probs.tolist() for f in with_face if f.probs is not None])
            if float(np.median([f.face_width_px for f in with_face])) < self.vision.min_face_px:
                flags.append(FLAG_SMALL_FACE)
        quality: FaceQuality = "good"
        for flag in (FLAG_NO_FACE, FLAG_SMALL_FACE, FLAG_LOW_LIGHT, FLAG_MULTIPLE_FACES):
            if flag in flags:
                quality = flag  # type: ignore[assignment]  # the face flags are the face qualities
                break
        return FaceChannel(
            frames=len(frames),
            coverage=round(coverage, 4),
            max_faces=max(f.faces for f in frames),
            mean_detection_score=round(float(np.mean([f.detection_score for f in with_face])) if with_face else 0.0, 4),
            probs=probs,
            quality=quality,
        )

    def _voice(
        self, window: WindowInput, start_s: float, flags: list[str], timing: dict[str, float]
    ) -> tuple[VoiceChannel | None, tuple[Utterance, ...]]:
        if not window.audio_present:
            flags.append(FLAG_NO_AUDIO)
            return None, ()
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
        voice = (
            self.channels.voice.analyze(window.audio, activity, timing)
            if self.channels.voice is not None
            else activity_only(activity, self.audio)
        )
        if voice.quality == "audio_clipping":
            flags.append(FLAG_CLIPPING)
        transcript: tuple[Utterance, ...] = ()
        if self.channels.words is not None:
            t1 = time.perf_counter()
            transcript = tuple(self.channels.words.feed(window.audio, start_s, activity.voiced, self.logmel.hop))
            if transcript:
                timing["transcribe_ms"] = round(sum(u.transcribe_ms for u in transcript), 3)
                timing["text_ms"] = round(sum(u.text_ms for u in transcript), 3)
            timing["words_ms"] = round((time.perf_counter() - t1) * 1e3, 3)
        return voice, transcript

    def _words(self, start_s: float, end_s: float) -> WordsChannel | None:
        return self.channels.words.window(start_s, end_s) if self.channels.words is not None else None

    def _pulse(self, window: WindowInput, timing: dict[str, float]) -> PulseChannel | None:
        tracker = self.channels.pulse
        if tracker is None:
            return None
        t0 = time.perf_counter()
        tracker.add(window.frames, window.origin_s)
        pulse = tracker.estimate()
        timing["skin_ms"] = round(sum(f.skin_ms for f in window.frames), 3)
        timing["pulse_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return pulse
