"""Speaker attribution as the first step of a window's audio path: before any channel reads the
window, its audio keeps only the client's speech (everything else is silenced, in memory) and the
shared voice activity only the client's voiced frames."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from edge.audio.vad import VoiceActivity
from edge.channels.base import AudioAnalysis, WindowContext
from edge.speakers.attribution import SpeakerSession
from edge.speakers.mouth import MouthTrack


def attribute_window(context: WindowContext, session: SpeakerSession) -> None:
    """Attribute the window's speech and leave only the client's in ``context`` (``context.speech``
    gets the shares). A window without audio or voiced frames is left as it is."""
    analysis = context.audio()
    if analysis is None:
        return
    if not analysis.activity.voiced.any():  # silence: nothing to attribute, but the mouth's rest counts
        track = MouthTrack.of(context.window)
        if track is not None:
            session.mouth.observe(track, analysis.activity.voiced, analysis.hop, context.start_s)
        return
    t0 = time.perf_counter()
    window = context.window
    activity, hop = analysis.activity, analysis.hop
    attributed = session.attribute(window.audio, activity.voiced, hop, context.start_s, MouthTrack.of(window))
    keep = attributed.keep
    context.speech = attributed.attribution
    if np.array_equal(keep, activity.voiced):  # all of the speech is the client's: nothing to silence
        context.timing["speakers_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return
    # Every frame, voiced or not (the quiet parts of words, short pauses), goes with its nearest
    # voiced frame: a turn is silenced as a whole, the client's speech is left whole.
    voiced_at = np.flatnonzero(activity.voiced)
    after = np.clip(np.searchsorted(voiced_at, np.arange(keep.shape[0])), 0, voiced_at.shape[0] - 1)
    before = np.clip(after - 1, 0, voiced_at.shape[0] - 1)
    frames = np.arange(keep.shape[0])
    nearest = np.where(np.abs(voiced_at[before] - frames) <= np.abs(voiced_at[after] - frames), before, after)
    frame_keep = keep[voiced_at[nearest]]
    samples = np.repeat(frame_keep, hop)[: window.audio.shape[0]]
    if samples.shape[0] < window.audio.shape[0]:  # the tail after the last whole frame
        samples = np.concatenate([samples, np.full(window.audio.shape[0] - samples.shape[0], frame_keep[-1])])
    audio = np.where(samples, window.audio, np.float32(0.0)).astype(np.float32)
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    client = VoiceActivity(
        voiced_ratio=float(keep.mean()) if keep.size else 0.0,
        level_dbfs=float(10.0 * np.log10(max(power, 1e-12))),
        noise_floor_dbfs=activity.noise_floor_dbfs,
        clipped_ratio=float((np.abs(audio) >= 0.999).mean()) if audio.size else 0.0,
        voiced=keep,
    )
    context.window = replace(window, audio=audio)
    context.replace_audio(AudioAnalysis(client, hop))
    context.timing["speakers_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
