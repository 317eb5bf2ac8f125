"""Turn a completed window into a :class:`WindowResult`.

Each registered channel (:mod:`edge.channels.registry`: face, voice, words and pulse by default)
analyses the window with its per-session state and reports its own quality and latency; the
window's distribution is the late fusion of the voting channels that are present and good
(:mod:`edge.fusion`), with each channel's Shapley contribution; the channels' valences give the
disparity, and the explainer may explain the window. Before any channel reads the window, speaker
attribution (:mod:`edge.speakers`) leaves only the client's speech in its audio.

A window is completed (fused, scored, explained) once every channel has settled for it: the words
channel waits until the words said in the window are transcribed (:mod:`edge.channels.words`).
Windows with speech complete in order (in a live room one that is explained comes back later, see
below); a window that has waited while ``max_wait_s`` of later windows
were analysed is completed with what its channels have (they mark it late). A window without the
client's speech (silence, no audio, or only staff speaking) waits for nobody: it completes as soon
as it is analysed, ahead of earlier windows still waiting for their words. The disparity tracker
still sees every window's score in time order (a score waits there until the windows before it are
scored), so moments are found as before; an event goes with the window whose completion ends it.
In a live room a window that is explained comes back from the explanation worker
(:mod:`edge.explain.worker`) with its explanation; the windows completed meanwhile do not wait for it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from clinic_signals.fusion import LateFusion, WindowFusion
from edge.audio.features import LogMel
from edge.audio.vad import SpeechStream
from edge.channels.base import ChannelState, WindowContext
from edge.channels.face import FaceState
from edge.channels.registry import ChannelRegistry, default_registry
from edge.channels.voice import VoiceSession
from edge.channels.words import WordsAnalyzer
from edge.config.models import AudioConfig, FusionConfig, VisionConfig
from edge.disparity.score import DisparityTracker, disparity
from edge.explain.policy import Explainer
from edge.explain.worker import ExplanationWorker, explained
from edge.results import (
    FLAG_NO_AUDIO,
    FLAG_SILENCE,
    ChannelResult,
    Disparity,
    DisparityEvent,
    Utterance,
    WindowInput,
    WindowResult,
)
from edge.speakers.attribution import SpeakerSession
from edge.speakers.window import attribute_window

FINISH_EXPLAIN_S = 30.0  # at a session's end, the longest its last explanations are waited for


@dataclass
class SessionChannels:
    """A session's channel states (by channel name; absent where the room switched one off), its
    fusion, disparity tracker and explainer."""

    states: Mapping[str, ChannelState] = field(default_factory=dict)
    fusion: WindowFusion = field(default_factory=lambda: WindowFusion(LateFusion({}), FusionConfig()))
    disparity: DisparityTracker | None = None
    explainer: Explainer | None = None
    explanations: ExplanationWorker | None = None  # live rooms: explanations off the windows' path
    registry: ChannelRegistry = field(default_factory=default_registry)
    speakers: SpeakerSession | None = None  # None: every voice is analysed as the client's
    max_wait_s: float = 20.0  # longest a window waits for a channel to settle (session time)

    @property
    def words(self) -> WordsAnalyzer | None:
        """The words channel's state (its utterances feed the explanations)."""
        state = self.states.get("words")
        return state if isinstance(state, WordsAnalyzer) else None


@dataclass(frozen=True)
class SessionTail:
    """What the end of a session still produces: speech that was going on, a disparity still running."""

    utterances: list[Utterance]
    events: list[DisparityEvent]
    windows: list[WindowResult] = field(default_factory=list)  # windows completed at the end


@dataclass
class _Pending:
    """A window analysed by its channels, waiting for them to settle."""

    window: WindowInput
    context: WindowContext
    results: dict[str, ChannelResult]


def speechless(context: WindowContext) -> bool:
    """Whether the window holds no speech of the client's: silent, without audio, or only staff's."""
    if FLAG_SILENCE in context.flags or FLAG_NO_AUDIO in context.flags:
        return True
    speech = context.speech
    return speech is not None and speech.voiced_s > 0 and speech.client == 0


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
        # Without channel states (a bare summariser) the face and the voice's activity are analysed.
        self.channels = channels or SessionChannels({"face": FaceState(vision), "voice": VoiceSession(audio, None)})
        self.logmel = LogMel(n_mels=audio.n_mels)
        self.speech_stream = SpeechStream(audio.vad_threshold) if audio.vad == "silero" else None
        self._pending: deque[_Pending] = deque()
        self._newest_end = 0.0
        self._scores: list[tuple[float, float, Disparity | None]] = []  # completed, not yet given to the tracker

    @property
    def waiting(self) -> int:
        """Windows analysed but not yet completed (waiting for a channel or for their explanation)."""
        worker = self.channels.explanations
        return len(self._pending) + (worker.pending if worker is not None else 0)

    @property
    def waiting_for_channels(self) -> int:
        """Windows waiting for a channel to settle (their words); not those waiting for an explanation,
        whose number would tell when a session's channels disagreed."""
        return len(self._pending)

    def summarize(self, window: WindowInput) -> list[WindowResult]:
        """Analyse a window; returns the windows completed by it (in order, possibly none)."""
        # Session time: stream time within the capture segment, plus when that segment began.
        start = window.start_s - window.origin_s + window.segment_offset_s
        end = window.end_s - window.origin_s + window.segment_offset_s
        context = WindowContext(window, start, end, self.audio, self.logmel, self.speech_stream)
        if self.channels.speakers is not None:
            attribute_window(context, self.channels.speakers)  # from here on, the client's speech only
        results: dict[str, ChannelResult] = {}
        for channel in self.channels.registry:
            state = self.channels.states.get(channel.name)
            if state is None:
                continue
            result = state.analyze(context)
            if result is not None:
                results[channel.name] = result
        self._pending.append(_Pending(window, context, results))
        self._newest_end = max(self._newest_end, end)
        return self.poll()

    def poll(self, *, final: bool = False) -> list[WindowResult]:
        """The waiting windows whose channels have settled (all of them when ``final``); windows
        without the client's speech at once; and those whose explanation came back meanwhile."""
        worker = self.channels.explanations
        done: list[WindowResult] = worker.collect() if worker is not None else []
        states = self.channels.states
        for pending in list(self._pending):
            end = pending.context.end_s
            unsettled = not speechless(pending.context) and any(not state.settled(end) for state in states.values())
            late = self._newest_end - end >= self.channels.max_wait_s
            if unsettled and not (late or final):
                continue  # settled is monotonic in time: later windows with speech wait too
            self._pending.remove(pending)
            for name, state in states.items():
                result = state.complete(pending.context, pending.results.get(name), late=unsettled)
                if result is not None:
                    pending.results[name] = result
            completed = self._complete(pending)
            if completed is not None:
                done.append(completed)
        return done

    def _track(self, start: float, end: float, score: Disparity | None) -> tuple[DisparityEvent, ...]:
        """Give the tracker, in time order, the scores of every window before the earliest still
        waiting; the events that end meanwhile."""
        tracker = self.channels.disparity
        if tracker is None:
            return ()
        self._scores.append((start, end, score))
        self._scores.sort(key=lambda item: item[0])
        waiting = min((p.context.start_s for p in self._pending), default=float("inf"))
        events = []
        while self._scores and self._scores[0][0] < waiting:
            s, e, value = self._scores.pop(0)
            event = tracker.add(round(s, 3), round(e, 3), value)
            if event is not None:
                events.append(event)
        return tuple(events)

    def _complete(self, pending: _Pending) -> WindowResult | None:
        """The window's result; None when it went to the explanation worker (it comes back by
        :meth:`poll`)."""
        window, context, results = pending.window, pending.context, pending.results
        start, end = context.start_s, context.end_s
        results = {c.name: results[c.name] for c in self.channels.registry if c.name in results}
        timing = context.timing
        t0 = time.perf_counter()
        fusion = self.channels.fusion(self.channels.registry.votes(results))
        timing["fusion_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        score = None
        events: tuple[DisparityEvent, ...] = ()
        if self.channels.disparity is not None:
            score = disparity(self.channels.registry.valences(results))
            events = self._track(start, end, score)
        explainer = self.channels.explainer
        reason = None
        if explainer is not None:
            reason = explainer.reason(state=fusion.state, disparity=score, ready_monotonic=window.ready_monotonic)
        started = self.session_start + timedelta(seconds=max(0.0, start))
        result = WindowResult(
            session_id=self.session_id,
            index=window.index,
            start_s=round(start, 3),
            end_s=round(end, 3),
            started_at=started.isoformat(timespec="milliseconds"),
            probs=fusion.probs,
            label=fusion.label,
            confidence=fusion.confidence,
            flags=tuple(context.flags),
            channels=results,
            timing_ms=timing,
            ready_monotonic=window.ready_monotonic,
            fused=fusion.used,
            transcript=tuple(context.transcript),
            state=fusion.state,
            second=fusion.second,
            contributions=fusion.contributions,
            fusion_method=fusion.method,
            disparity=score,
            events=events,
            valence=fusion.valence,
            arousal=fusion.arousal,
        )
        if explainer is None or reason is None:
            return result
        worker = self.channels.explanations
        if worker is None:
            return explained(explainer, result, reason, context, results)
        return None if worker.submit(result, reason, context, results) else result

    def finish(self) -> SessionTail:
        """At the end of a session: transcribe speech that was still going on, complete the windows
        waiting for it, close a running disparity. Utterances closed now go with the last window
        completed, or, when none waited, with the tail."""
        utterances = [u for state in self.channels.states.values() for u in state.finish()]
        if self._pending:
            self._pending[-1].context.transcript.extend(utterances)
            utterances = []
        windows = self.poll(final=True)
        worker = self.channels.explanations
        if worker is not None:
            worker.wait(FINISH_EXPLAIN_S)
            windows += worker.close()
        event = self.channels.disparity.close() if self.channels.disparity is not None else None
        return SessionTail(utterances, [event] if event is not None else [], windows)

    def close(self) -> None:
        """End the session's worker threads (transcription, explanations); forget the client's voice
        profile."""
        if self.channels.explanations is not None:
            self.channels.explanations.close()
        for state in self.channels.states.values():
            state.close()
        if self.channels.speakers is not None:
            self.channels.speakers.close()
