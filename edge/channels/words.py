"""The words channel: utterances cut from the room's audio, transcribed, and their text emotion.

Windows overlap, so each window hands over only the audio that is new since the previous one. A
stretch of speech ends at the first stretch of new audio whose voiced share is below
``audio.min_voiced_ratio`` (a pause of about one hop) or when it reaches ``max_utterance_s``; it is
then transcribed (Silero VAD inside the transcriber passes on only voiced audio) and its text
classified, with leave-one-word-out importances. A window carries the utterances that overlap it
and have been transcribed by the time it is analysed: the windows over an utterance's end and the
pause after it. Text lives in memory in a short list of recent utterances; it is stored only when
the room's config says so, and never published.

In a live room transcription runs on its own thread (``words``), so a window never waits for
speech-to-text: an utterance reaches the windows analysed after its transcription is done. At most
``MAX_PENDING`` utterances wait for it; beyond that the oldest is dropped and counted
(``dropped``). For files analysed as fast as possible (``synchronous``) each window waits for the
transcriptions already started, so a file's result does not depend on the machine's speed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from contract.audio import SAMPLE_RATE
from contract.classes import mean_distribution
from contract.payload import Probabilities, WordsSummary
from edge.channels.base import Channel, ChannelState, ExplainModels, LoadedModels, WindowContext
from edge.config.models import AppConfig
from edge.fusion.decide import ChannelVote
from edge.results import GOOD, Utterance, UtteranceSpan, WordsChannel
from edge.text.emotion import TextEmotion
from edge.transcribe.base import Transcriber

logger = logging.getLogger(__name__)

RECENT_S = 30.0  # utterances older than this (before the newest window) are forgotten
GAP_TOLERANCE_S = 0.05
MAX_PENDING = 4  # utterances waiting for transcription
FINISH_TIMEOUT_S = 60.0


class WordsAnalyzer:
    """One per session. Not thread-safe: used by the thread that analyses windows."""

    def __init__(
        self,
        transcriber: Transcriber,
        text: TextEmotion,
        *,
        min_voiced_ratio: float,
        max_utterance_s: float,
        synchronous: bool = True,
    ) -> None:
        self.transcriber = transcriber
        self.text = text
        self.min_voiced_ratio = min_voiced_ratio
        self.max_samples = round(max_utterance_s * SAMPLE_RATE)
        self._chunks: list[npt.NDArray[np.float32]] = []
        self._start_s = 0.0  # session time of the first buffered sample
        self._speech = False  # the buffer holds voiced audio
        self._fed_until: float | None = None  # session time up to which audio was handed over
        self._recent: deque[Utterance] = deque()
        self._lock = threading.Lock()  # _recent is read by the windows and written by the worker
        self.synchronous = synchronous
        self.dropped = 0  # utterances dropped because transcription fell behind
        self._jobs: deque[tuple[npt.NDArray[np.float32], float]] = deque()
        self._done: queue.SimpleQueue[Utterance] = queue.SimpleQueue()
        self._wake = threading.Condition()
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the transcription thread is alive."""
        return self._worker is not None and self._worker.is_alive()

    def _buffered(self) -> int:
        return sum(c.shape[0] for c in self._chunks)

    def feed(
        self, audio: npt.NDArray[np.float32], start_s: float, voiced: npt.NDArray[np.bool_], hop: int
    ) -> list[Utterance]:
        """Hand over a window's audio (starting at session time ``start_s``) and its per-frame voicing
        (frames every ``hop`` samples); returns the utterances whose transcription finished since the
        last call."""
        end_s = start_s + audio.shape[0] / SAMPLE_RATE
        new_from = start_s if self._fed_until is None else max(self._fed_until, start_s)
        if self._fed_until is not None and start_s > self._fed_until + GAP_TOLERANCE_S:
            self.flush()  # the capture was interrupted: what was said before stands alone
        if end_s <= new_from:
            return self._collect()
        first = round((new_from - start_s) * SAMPLE_RATE)
        chunk = audio[first:]
        frames = voiced[np.arange(voiced.shape[0]) * hop >= first]
        share = float(frames.mean()) if frames.size else 0.0
        self._fed_until = end_s
        if share >= self.min_voiced_ratio:
            if not self._speech:
                # Keep the quiet stretch just before as the onset of the utterance.
                self._chunks = self._chunks[-1:]
                self._start_s = new_from - (self._chunks[0].shape[0] / SAMPLE_RATE if self._chunks else 0.0)
                self._speech = True
            self._chunks.append(chunk)
            if self._buffered() >= self.max_samples:
                self.flush()
        elif self._speech:
            self._chunks.append(chunk)
            self.flush()
        else:
            self._chunks, self._start_s = [chunk], new_from
        self._forget(end_s)
        if self.synchronous:
            self.wait()
        return self._collect()

    def flush(self) -> list[Utterance]:
        """Hand what is buffered to transcription, if it holds speech (at an end of speech or of
        capture); returns nothing: finished utterances come back from :meth:`feed`."""
        chunks, speech, start = self._chunks, self._speech, self._start_s
        self._chunks, self._speech = [], False
        if speech and chunks:
            self._submit(np.concatenate(chunks), start)
        return []

    def finish(self) -> list[Utterance]:
        """At the end of a session: transcribe what is buffered and wait for every transcription."""
        self.flush()
        if not self.wait(FINISH_TIMEOUT_S):
            logger.warning(
                "transcription did not finish within %.0f s; the last utterances are left out", FINISH_TIMEOUT_S
            )
        return self._collect()

    def _submit(self, audio: npt.NDArray[np.float32], start: float) -> None:
        with self._wake:
            if len(self._jobs) >= MAX_PENDING:
                self._jobs.popleft()
                self.dropped += 1
                logger.warning("transcription is behind: an utterance was dropped (%d so far)", self.dropped)
            self._jobs.append((audio, start))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="words", daemon=True)
                self._worker.start()
            self._wake.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every submitted utterance is transcribed; False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def _collect(self) -> list[Utterance]:
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def _work(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._jobs or self._closed)
                if self._closed:
                    return
                audio, start = self._jobs.popleft()
                self._busy = True
            try:
                utterance = self._transcribe(audio, start)
            except Exception:  # a failure must not end the channel; it is logged with its cause
                logger.exception("transcription of an utterance failed")
                utterance = None
            with self._wake:
                self._busy = False
                if utterance is not None:
                    with self._lock:
                        self._recent.append(utterance)
                    self._done.put(utterance)
                self._wake.notify_all()

    def _transcribe(self, audio: npt.NDArray[np.float32], start: float) -> Utterance | None:
        transcript = self.transcriber.transcribe(audio)
        text = transcript.text.strip()
        if not text:
            return None
        result = self.text.predict(text)
        if result is None:
            return None
        segments = transcript.segments
        return Utterance(
            start_s=round(start + (segments[0].start_s if segments else 0.0), 3),
            end_s=round(start + (segments[-1].end_s if segments else audio.shape[0] / SAMPLE_RATE), 3),
            text=text,
            probs=result.probs,
            label=result.label,
            confidence=result.confidence,
            importance=result.words,
            transcribe_ms=round(transcript.seconds * 1e3, 3),
            text_ms=round(result.seconds * 1e3, 3),
        )

    def recent(self) -> list[Utterance]:
        """Utterances of the last ``RECENT_S`` seconds (memory only)."""
        with self._lock:
            return list(self._recent)

    def _forget(self, now_s: float) -> None:
        with self._lock:
            while self._recent and self._recent[0].end_s < now_s - RECENT_S:
                self._recent.popleft()

    def analyze(self, context: WindowContext) -> WordsChannel:
        """Hand over the window's new audio, then the text emotion of the utterances overlapping it."""
        analysis = context.audio()
        if analysis is not None:
            t1 = time.perf_counter()
            transcript = self.feed(context.window.audio, context.start_s, analysis.activity.voiced, analysis.hop)
            if transcript:
                context.timing["transcribe_ms"] = round(sum(u.transcribe_ms for u in transcript), 3)
                context.timing["text_ms"] = round(sum(u.text_ms for u in transcript), 3)
            context.timing["words_ms"] = round((time.perf_counter() - t1) * 1e3, 3)
            context.transcript.extend(transcript)
        return self.window(context.start_s, context.end_s)

    def window(self, start_s: float, end_s: float) -> WordsChannel:
        """The words channel of the window ``[start_s, end_s)`` (session time)."""
        overlapping = [u for u in self.recent() if u.start_s < end_s and u.end_s > start_s]
        spans = tuple(UtteranceSpan(u.start_s, u.end_s, u.word_count) for u in overlapping)
        if not overlapping:
            return WordsChannel(utterances=(), probs=None, quality="no_words")
        weights = np.array([u.word_count for u in overlapping], dtype=np.float64)
        mean = (np.array([u.probs for u in overlapping]) * weights[:, None]).sum(axis=0) / weights.sum()
        return WordsChannel(utterances=spans, probs=mean_distribution([mean.tolist()]), quality="good")

    def close(self) -> None:
        """End the worker and forget every utterance (the transcriber belongs to the appliance)."""
        with self._wake:
            self._closed = True
            self._jobs.clear()
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=FINISH_TIMEOUT_S)
        with self._lock:
            self._recent.clear()
        self._chunks = []


class WordsExplainer:
    """The text model's leave-one-word-out importances of the utterances overlapping the window."""

    def __init__(self, analyzer: WordsAnalyzer) -> None:
        self.analyzer = analyzer

    def __call__(self, context: WindowContext, result: WordsChannel | None) -> dict[str, Any] | None:  # noqa: ARG002
        said = [u for u in self.analyzer.recent() if u.start_s < context.end_s and u.end_s > context.start_s]
        words = tuple(w for u in said for w in u.importance)
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
            synchronous=not live,  # a live room never waits for speech-to-text
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
        spans = {(u.start_s, u.end_s): u.words for w in results for u in w.utterances}  # windows share utterances
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
        return WordsChannel(spans, tuple(raw["probs"]) if raw.get("probs") else None, raw["quality"])
