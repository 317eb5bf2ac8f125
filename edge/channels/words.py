"""The words channel: the client's words, transcribed as they are spoken, on the windows they were
spoken in.

Windows overlap, so each window hands over only the audio that is new since the previous one,
with whether it is voiced (its voiced share reaches ``audio.min_voiced_ratio``). A streaming
transcriber (:mod:`edge.transcribe.stream`) turns the speech into words with session times,
committed once two transcriptions agree, and closes an utterance at a sentence end or a pause; the
utterance's text emotion (with leave-one-word-out importances) then applies to each of its words.
A window's words channel is the emotion of the words whose middle lies in the window, each word
weighing its utterance's distribution.

A window's words are known once they are committed, a few seconds after they were said. The window
therefore waits (:meth:`WordsAnalyzer.settled`) until everything said before its end is committed,
or ``max_wait_s`` of later audio has been analysed: it is then completed without those words
(quality ``late``). Words of a sentence still being spoken weigh the emotion of the sentence so far;
once it closes, its whole text's emotion is what is stored and explained.

In a live room transcription runs on its own thread (``words``) at a lower priority (``nice``,
with the engine's workers): the face and voice never wait for it, and get the CPU first. Audio
that waited is caught up in one pass, not one per step. When it falls more than ``shed_after_s``
behind, the speech going on and the audio waiting are dropped untranscribed, counted (``skipped``)
and their windows marked ``skipped``: transcription sheds work first, never the face path. For
files analysed as fast as possible (``synchronous``) each window waits for transcription, so a
file's result does not depend on the machine's speed. Text lives in memory in a short list of
recent utterances; it is stored only when the room's config says so, and never published.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from clinic_signals.fusion import ChannelVote
from contract.audio import SAMPLE_RATE
from contract.classes import mean_distribution
from contract.payload import Probabilities, WordsSummary
from edge import native
from edge.channels.base import Channel, ChannelState, ExplainModels, LoadedModels, WindowContext
from edge.config.models import AppConfig
from edge.results import GOOD, ChannelResult, Utterance, UtteranceSpan, WordsChannel
from edge.text.emotion import TextEmotion
from edge.transcribe.base import Transcriber
from edge.transcribe.stream import SpokenUtterance, StreamingTranscriber

logger = logging.getLogger(__name__)

RECENT_S = 60.0  # utterances ending this long before the newest audio are forgotten
GAP_TOLERANCE_S = 0.05
FINISH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Audio:
    samples: npt.NDArray[np.float32]
    start_s: float
    voiced: bool
    onset_s: float | None = None  # session time of the window's first voiced frame
    voiced_until_s: float | None = None  # session time where its last voiced frame ends
    last: bool = False  # the session's end: the speech going on is finished

    @property
    def end_s(self) -> float:
        return self.start_s + self.samples.shape[0] / SAMPLE_RATE


class WordsAnalyzer:
    """One per session. ``analyze`` and ``settled`` are called by the thread that analyses windows;
    transcription runs on the ``words`` thread."""

    def __init__(
        self,
        transcriber: Transcriber,
        text: TextEmotion,
        *,
        min_voiced_ratio: float,
        max_utterance_s: float,
        step_s: float = 2.0,
        quick_start_s: float = 0.0,
        pause_s: float = 2.0,
        shed_after_s: float = 6.0,
        synchronous: bool = True,
        nice: int = 0,
    ) -> None:
        # A file analysed as fast as possible gains nothing from words sooner, and quick passes that
        # give way to load would make its words depend on the machine: only live rooms start quick.
        self.stream = StreamingTranscriber(
            transcriber,
            step_s=step_s,
            pause_s=pause_s,
            max_utterance_s=max_utterance_s,
            quick_start_s=0.0 if synchronous else quick_start_s,
        )
        self.text = text
        self.min_voiced_ratio = min_voiced_ratio
        self.shed_after_s = shed_after_s
        self.nice = nice  # of the words thread and the transcriber's workers
        self.synchronous = synchronous
        self.skipped = 0  # stretches of speech left untranscribed because the device was behind
        self._fed_until: float | None = None  # session time up to which audio was handed over
        self._recent: deque[Utterance] = deque()
        self._skipped_spans: deque[tuple[float, float]] = deque()
        self._done: list[Utterance] = []  # closed since the last window collected them
        self._open: Utterance | None = None  # the committed words of the sentence still being spoken
        self._jobs: deque[_Audio] = deque()
        self._wake = threading.Condition()  # guards everything above that both threads touch
        self._settled_until = 0.0
        self._busy = False
        self._drop = False  # the worker is to drop the speech it buffers (set when shedding)
        self._closed = False
        self._worker: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the transcription thread is alive."""
        return self._worker is not None and self._worker.is_alive()

    def feed(self, audio: npt.NDArray[np.float32], start_s: float, voiced: npt.NDArray[np.bool_], hop: int) -> None:
        """Hand over a window's audio (starting at session time ``start_s``) and its per-frame voicing
        (frames every ``hop`` samples); only the part not handed over before is new."""
        end_s = start_s + audio.shape[0] / SAMPLE_RATE
        new_from = start_s if self._fed_until is None else max(self._fed_until, start_s)
        if end_s <= new_from:
            return
        first = round((new_from - start_s) * SAMPLE_RATE)
        frames = voiced[np.arange(voiced.shape[0]) * hop >= first]
        share = float(frames.mean()) if frames.size else 0.0
        positions = np.flatnonzero(voiced) * hop
        onset = start_s + positions[0] / SAMPLE_RATE if positions.size else None
        until = min(end_s, start_s + (positions[-1] + hop) / SAMPLE_RATE) if positions.size else None
        self._fed_until = end_s
        chunk = audio[first:].astype(np.float32, copy=True)
        self._submit(_Audio(chunk, new_from, share >= self.min_voiced_ratio, onset, until))
        if self.synchronous:
            self.wait()

    def _submit(self, audio: _Audio) -> None:
        with self._wake:
            self._jobs.append(audio)
            if not self.synchronous and self._jobs[-1].end_s - self._jobs[0].start_s > self.shed_after_s:
                self._shed()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="words", daemon=True)
                self._worker.start()
            self._wake.notify_all()

    def _shed(self) -> None:
        """Behind real time (the lock is held): drop the audio waiting and the speech going on. The
        worker drops its own buffer when it next looks (``_drop``)."""
        start, end = self._jobs[0].start_s, self._jobs[-1].end_s
        if any(job.voiced for job in self._jobs) or self.stream.speaking:
            self.skipped += 1
            self._skipped_spans.append((start, end))
            logger.warning(
                "transcription is behind real time: %.1f s of speech left untranscribed (%d so far)",
                end - start,
                self.skipped,
            )
        self._jobs.clear()
        self._drop = True
        self._settled_until = max(self._settled_until, end)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every audio handed over is transcribed; False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def _work(self) -> None:
        if self.nice:
            native.lower_priority({threading.get_native_id(), *self.stream.transcriber.threads}, self.nice)
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._jobs or self._closed or self._drop)
                if self._closed:
                    return
                drop, self._drop = self._drop, False
                job = self._jobs.popleft() if self._jobs else None
                self._busy = job is not None
                behind = bool(self._jobs)  # more audio waits: no pass now, one over all of it once caught up
            if drop:
                self.stream.skip()
            if job is None:
                continue
            opened = self._open
            try:
                if job.last:
                    closed = self.stream.finish()
                else:
                    closed = self.stream.feed(
                        job.samples,
                        job.start_s,
                        voiced=job.voiced,
                        onset_s=job.onset_s,
                        voiced_until_s=job.voiced_until_s,
                        quick=not behind,
                        defer=behind,
                    )
                utterances = [u for u in (self._utterance(c) for c in closed) if u is not None]
                words = self.stream.open_words
                if not words:
                    opened = None
                elif opened is None or len(opened.word_times) != len(words):
                    opened = self._utterance(SpokenUtterance(words, 0, 0.0), explain=False)
            except Exception:  # a failure must not end the channel; it is logged with its cause
                logger.exception("transcription failed; the speech going on is dropped")
                self.stream.skip()
                utterances, opened = [], None
            with self._wake:
                self._busy = False
                self._open = opened
                self._recent.extend(utterances)
                self._done.extend(utterances)
                if not self._drop:
                    self._settled_until = max(self._settled_until, self.stream.settled_until)
                self._wake.notify_all()

    def _utterance(self, spoken: SpokenUtterance, *, explain: bool = True) -> Utterance | None:
        """The text emotion of closed speech (with word importances), or of the committed words of
        the sentence still being spoken (``explain`` False)."""
        words = [(w, "".join(w.text.split())) for w in spoken.words]
        text = " ".join(t for _, t in words if t)
        if not text:
            return None
        result = self.text.predict(text, explain=explain)
        if result is None:
            return None
        return Utterance(
            start_s=round(spoken.start_s, 3),
            end_s=round(spoken.end_s, 3),
            text=text,
            probs=result.probs,
            label=result.label,
            confidence=result.confidence,
            importance=result.words,
            transcribe_ms=round(spoken.seconds * 1e3, 3),
            text_ms=round(result.seconds * 1e3, 3),
            word_times=tuple((round(w.start_s, 3), round(w.end_s, 3)) for w, t in words if t),
        )

    def _collect(self) -> list[Utterance]:
        with self._wake:
            out, self._done = self._done, []
        return out

    def finish(self) -> list[Utterance]:
        """At the end of a session: close the speech going on and wait for every transcription."""
        with self._wake:
            self._jobs.append(_Audio(np.zeros(0, dtype=np.float32), self._fed_until or 0.0, voiced=False, last=True))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="words", daemon=True)
                self._worker.start()
            self._wake.notify_all()
        if not self.wait(FINISH_TIMEOUT_S):
            logger.warning(
                "transcription did not finish within %.0f s; the last utterances are left out", FINISH_TIMEOUT_S
            )
        with self._wake:
            self._settled_until = math.inf  # nothing more will be said in this session
        return self._collect()

    def settled(self, end_s: float) -> bool:
        """Whether every word said before ``end_s`` is in a closed utterance (or was shed)."""
        with self._wake:
            return end_s <= self._settled_until + GAP_TOLERANCE_S

    def recent(self, *, spoken: bool = False) -> list[Utterance]:
        """Closed utterances of the last ``RECENT_S`` seconds (memory only); with ``spoken``, the
        sentence still being spoken too (its committed words)."""
        with self._wake:
            out = list(self._recent)
            if spoken and self._open is not None:
                out.append(self._open)
            return out

    def _forget(self, now_s: float) -> None:
        with self._wake:
            while self._recent and self._recent[0].end_s < now_s - RECENT_S:
                self._recent.popleft()
            while self._skipped_spans and self._skipped_spans[0][1] < now_s - RECENT_S:
                self._skipped_spans.popleft()

    def analyze(self, context: WindowContext) -> WordsChannel | None:
        """Hand over the window's new audio; the result comes with :meth:`complete`, once settled."""
        analysis = context.audio()
        if analysis is not None:
            t1 = time.perf_counter()
            self.feed(context.window.audio, context.start_s, analysis.activity.voiced, analysis.hop)
            context.timing["words_ms"] = round((time.perf_counter() - t1) * 1e3, 3)
            self._forget(context.end_s)
        return None

    def complete(self, context: WindowContext, result: ChannelResult | None, *, late: bool) -> WordsChannel:  # noqa: ARG002
        """The window's words channel, from the utterances closed so far; the utterances closed since
        the last window go with this one (to be stored where the room keeps transcripts)."""
        transcript = self._collect()
        if transcript:
            context.timing["transcribe_ms"] = round(sum(u.transcribe_ms for u in transcript), 3)
            context.timing["text_ms"] = round(sum(u.text_ms for u in transcript), 3)
            context.transcript.extend(transcript)
        words = self.window(context.start_s, context.end_s)
        if words.quality == GOOD:
            return words
        with self._wake:
            skipped = any(a < context.end_s and b > context.start_s for a, b in self._skipped_spans)
        if skipped:
            return WordsChannel((), None, "skipped", 0)
        return WordsChannel((), None, "late", 0) if late else words

    def window(self, start_s: float, end_s: float) -> WordsChannel:
        """The words channel of the window ``[start_s, end_s)`` (session time)."""
        said = [(u, len(u.words_in(start_s, end_s))) for u in self.recent(spoken=True)]
        said = [(u, n) for u, n in said if n]
        if not said:
            return WordsChannel(utterances=(), probs=None, quality="no_words", in_window=0)
        spans = tuple(UtteranceSpan(u.start_s, u.end_s, u.word_count) for u, _ in said)
        weights = np.array([n for _, n in said], dtype=np.float64)
        mean = (np.array([u.probs for u, _ in said]) * weights[:, None]).sum(axis=0) / weights.sum()
        return WordsChannel(
            utterances=spans,
            probs=mean_distribution([mean.tolist()]),
            quality="good",
            in_window=int(weights.sum()),
        )

    def close(self) -> None:
        """End the worker and forget every utterance (the transcriber belongs to the appliance)."""
        with self._wake:
            self._closed = True
            self._jobs.clear()
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=FINISH_TIMEOUT_S)
        with self._wake:
            self._recent.clear()
            self._done = []
        self.stream.skip()


class WordsExplainer:
    """The text model's leave-one-word-out importances of the utterances overlapping the window."""

    def __init__(self, analyzer: WordsAnalyzer) -> None:
        self.analyzer = analyzer

    def __call__(self, context: WindowContext, result: WordsChannel | None) -> dict[str, Any] | None:  # noqa: ARG002
        found: list[tuple[str, float]] = []
        for u in self.analyzer.recent():
            inside = set(u.words_in(context.start_s, context.end_s))
            # importances are per word of the text (the first MAX_WORDS_EXPLAINED of a long one)
            found += [pair for i, pair in enumerate(u.importance) if i in inside]
        words = tuple(found)
        return {"words": words} if words else None


class Words(Channel):
    name = "words"
    result = WordsChannel
    stages = ("words", "transcribe", "text")
    votes = True
    summary_model = WordsSummary

    @override
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> WordsAnalyzer | None:
        if models.transcriber is None or models.text is None:
            return None
        return WordsAnalyzer(
            models.transcriber,
            models.text,
            min_voiced_ratio=config.audio.min_voiced_ratio,
            max_utterance_s=config.channels.words.max_utterance_s,
            step_s=config.channels.words.step_s,
            quick_start_s=config.channels.words.quick_start_s,
            pause_s=config.channels.words.pause_s,
            shed_after_s=config.channels.words.shed_after_s,
            synchronous=not live,  # a live room never waits for speech-to-text
            nice=config.channels.words.nice,
        )

    @override
    def explainer(self, config: AppConfig, state: ChannelState, models: ExplainModels) -> WordsExplainer | None:
        """Word importances are words: kept only where the room stores transcripts."""
        if not config.channels.words.store_transcript or not isinstance(state, WordsAnalyzer):
            return None
        return WordsExplainer(state)

    @override
    def vote(self, result: WordsChannel | None) -> ChannelVote:
        """Reliability: the word count / 8, capped at 1."""
        if result is None:
            return ChannelVote(self.name, None, "")
        return ChannelVote(self.name, result.probs, result.quality, min(1.0, result.words / 8))

    @override
    def present(self, result: WordsChannel | None) -> bool:
        return result is not None and bool(result.utterances)

    @override
    def summarize(self, results: Sequence[WordsChannel]) -> WordsSummary:
        # Windows share utterances; a sentence read while it was spoken shows with fewer words.
        spans: dict[float, int] = {}
        for w in results:
            for u in w.utterances:
                spans[u.start_s] = max(spans.get(u.start_s, 0), u.words)
        good = [w for w in results if w.quality == GOOD and w.probs is not None]
        return WordsSummary(
            quality=GOOD if good else "no_words",
            words=sum(spans.values()),
            utterances=len(spans),
            probs=Probabilities.of(mean_distribution([w.probs for w in good if w.probs is not None])),
        )

    @override
    def restore(self, raw: Mapping[str, Any]) -> WordsChannel:
        spans = tuple(UtteranceSpan(u["start_s"], u["end_s"], u["words"]) for u in raw["utterances"])
        probs = tuple(raw["probs"]) if raw.get("probs") else None
        return WordsChannel(spans, probs, raw["quality"], raw.get("in_window"))
