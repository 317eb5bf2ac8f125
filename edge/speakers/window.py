"""Speaker attribution as the first step of a window's audio path: before any channel reads the
window, its audio keeps only the client's speech (everything else is silenced, in memory) and the
shared voice activity only the client's voiced frames."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from edge.audio.vad import VoiceActivity
from edge.channels.base import AudioAnalysis, WindowContext
from edge.speakers.attribution import SpeakerSession
from edge.speakers.mouth import MouthTrack


def _nearest(values: npt.NDArray[np.bool_], at: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``values`` of the frames in ``at`` (at least one), spread to every frame from its nearest one."""
    marked = np.flatnonzero(at)
    frames = np.arange(values.shape[0])
    after = np.clip(np.searchsorted(marked, frames), 0, marked.shape[0] - 1)
    before = np.clip(after - 1, 0, marked.shape[0] - 1)
    nearest = np.where(np.abs(marked[before] - frames) <= np.abs(marked[after] - frames), before, after)
    spread: npt.NDArray[np.bool_] = values[marked[nearest]]
    return spread


def attribute_window(context: WindowContext, session: SpeakerSession) -> None:
    """Attribute the window's speech and leave only the client's in ``context`` (``context.speech``
    gets the shares). A window without audio or voiced frames is left as it is."""
    analysis = context.audio()
    if analysis is None:
        return
    activity, hop = analysis.activity, analysis.hop
    # Partials over the energy rule's frames (edge.audio.vad); the client keeps only what is speech.
    heard = activity.energy_voiced if activity.energy_voiced is not None else activity.voiced
    if not heard.any():  # silence: nothing to attribute, but the mouth's rest counts
        track = MouthTrack.of(context.window)
        if track is not None:
            session.mouth.observe(track, heard, hop, context.start_s)
        return
    t0 = time.perf_counter()
    window = context.window
    attributed = session.attribute(window.audio, heard, hop, context.start_s, MouthTrack.of(window))
    # Each frame is whoever's the nearest attributed frame is; of the client's, speech is kept.
    keep = _nearest(attributed.keep, heard) & activity.voiced
    context.speech = attributed.attribution
    if np.array_equal(keep, activity.voiced):  # all of the speech is the client's: nothing to silence
        context.timing["speakers_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return
    if not activity.voiced.any():  # sound, but no speech: nothing of it is the client's voice
        context.replace_audio(AudioAnalysis(replace(activity, voiced_ratio=0.0, voiced=keep), hop))
        context.timing["speakers_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return
    # Every frame, voiced or not (the quiet parts of words, short pauses), goes with its nearest
    # voiced frame: a turn is silenced as a whole, the client's speech is left whole.
    frame_keep = _nearest(keep, activity.voiced)
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
