"""The words channel: utterances cut from the room's audio, transcribed, and their text emotion.

Windows overlap, so each window hands over only the audio that is new since the previous one. A
stretch of speech ends at the first stretch of new audio whose voiced share is below
``audio.min_voiced_ratio`` (a pause of about one hop) or when it reaches ``max_utterance_s``; it is
then transcribed (Silero VAD inside the transcriber passes on only voiced audio) and its text
classified, with leave-one-word-out importances. A window carries the utterances that overlap it
and have been transcribed by the time it is analysed: the windows over an utterance's end and the
pause after it. Text lives in memory in a short list of recent utterances; it is stored only when
the room's config says so, and never published.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
import numpy.typing as npt

from edge.analysis.results import Utterance, UtteranceSpan, WordsChannel
from edge.labels import mean_distribution
from edge.text.emotion import TextEmotion
from edge.transcribe.base import RATE, Transcriber

logger = logging.getLogger(__name__)

RECENT_S = 30.0  # utterances older than this (before the newest window) are forgotten
GAP_TOLERANCE_S = 0.05


class WordsAnalyzer:
    """One per session. Not thread-safe: used by the thread that analyses windows."""

    def __init__(
        self,
        transcriber: Transcriber,
        text: TextEmotion,
        *,
        min_voiced_ratio: float,
        max_utterance_s: float,
    ) -> None:
        self.transcriber = transcriber
        self.text = text
        self.min_voiced_ratio = min_voiced_ratio
        self.max_samples = round(max_utterance_s * RATE)
        self._chunks: list[npt.NDArray[np.float32]] = []
        self._start_s = 0.0  # session time of the first buffered sample
        self._speech = False  # the buffer holds voiced audio
        self._fed_until: float | None = None  # session time up to which audio was handed over
        self._recent: deque[Utterance] = deque()

    def _buffered(self) -> int:
        return sum(c.shape[0] for c in self._chunks)

    def feed(
        self, audio: npt.NDArray[np.float32], start_s: float, voiced: npt.NDArray[np.bool_], hop: int
    ) -> list[Utterance]:
        """Hand over a window's audio (starting at session time ``start_s``) and its per-frame voicing
        (frames every ``hop`` samples); returns the utterances that ended with it."""
        done: list[Utterance] = []
        end_s = start_s + audio.shape[0] / RATE
        new_from = start_s if self._fed_until is None else max(self._fed_until, start_s)
        if self._fed_until is not None and start_s > self._fed_until + GAP_TOLERANCE_S:
            done += self.flush()  # the capture was interrupted: what was said before stands alone
        if end_s <= new_from:
            return done
        first = round((new_from - start_s) * RATE)
        chunk = audio[first:]
        frames = voiced[np.arange(voiced.shape[0]) * hop >= first]
        share = float(frames.mean()) if frames.size else 0.0
        self._fed_until = end_s
        if share >= self.min_voiced_ratio:
            if not self._speech:
                # Keep the quiet stretch just before as the onset of the utterance.
                self._chunks = self._chunks[-1:]
                self._start_s = new_from - (self._chunks[0].shape[0] / RATE if self._chunks else 0.0)
                self._speech = True
            self._chunks.append(chunk)
            if self._buffered() >= self.max_samples:
                done += self.flush()
        elif self._speech:
            self._chunks.append(chunk)
            done += self.flush()
        else:
            self._chunks, self._start_s = [chunk], new_from
        self._forget(end_s)
        return done

    def flush(self) -> list[Utterance]:
        """Transcribe what is buffered, if it holds speech (at an end of speech, of capture, or of the session)."""
        chunks, speech, start = self._chunks, self._speech, self._start_s
        self._chunks, self._speech = [], False
        if not speech or not chunks:
            return []
        audio = np.concatenate(chunks)
        transcript = self.transcriber.transcribe(audio)
        text = transcript.text.strip()
        if not text:
            return []
        result = self.text.predict(text)
        if result is None:
            return []
        segments = transcript.segments
        utterance = Utterance(
            start_s=round(start + (segments[0].start_s if segments else 0.0), 3),
            end_s=round(start + (segments[-1].end_s if segments else audio.shape[0] / RATE), 3),
            text=text,
            probs=result.probs,
            label=result.label,
            confidence=result.confidence,
            importance=result.words,
            transcribe_ms=round(transcript.seconds * 1e3, 3),
            text_ms=round(result.seconds * 1e3, 3),
        )
        self._recent.append(utterance)
        return [utterance]

    def recent(self) -> list[Utterance]:
        """Utterances of the last ``RECENT_S`` seconds (memory only)."""
        return list(self._recent)

    def _forget(self, now_s: float) -> None:
        while self._recent and self._recent[0].end_s < now_s - RECENT_S:
            self._recent.popleft()

    def window(self, start_s: float, end_s: float) -> WordsChannel:
        """The words channel of the window ``[start_s, end_s)`` (session time)."""
        overlapping = [u for u in self._recent if u.start_s < end_s and u.end_s > start_s]
        spans = tuple(UtteranceSpan(u.start_s, u.end_s, u.word_count) for u in overlapping)
        if not overlapping:
            return WordsChannel(utterances=(), probs=None, quality="no_words")
        weights = np.array([u.word_count for u in overlapping], dtype=np.float64)
        mean = (np.array([u.probs for u in overlapping]) * weights[:, None]).sum(axis=0) / weights.sum()
        return WordsChannel(utterances=spans, probs=mean_distribution([mean.tolist()]), quality="good")

    def close(self) -> None:
        self._recent.clear()
        self._chunks = []
        self.transcriber.close()
