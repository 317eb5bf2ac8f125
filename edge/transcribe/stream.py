"""Streaming transcription: words with their times while the client is still speaking.

The audio of the speech that is going on is kept in a buffer that starts at its onset. Every
``step_s`` seconds of new speech (every second while the buffer is shorter than ``quick_start_s``:
the start of a sentence, where a pass is cheap) the whole buffer is transcribed again with word times, and a word
becomes final (committed) once two consecutive transcriptions agree on it: the LocalAgreement-2
policy of whisper_streaming (Macháček, Dabre and Bojar, 2023, "Turning Whisper into Real-Time
Transcription System"). A later transcription sees more of the sentence than an earlier one, so the
words at the end of the buffer, which the model is still guessing, wait until they are confirmed.
These passes are provisional: the transcriber may withhold a doubtful answer (the fitted audio
context of :mod:`edge.transcribe.faster`), which then commits and settles nothing; the next pass, or
the last one over the utterance, which always answers, takes its place.

An utterance ends at a sentence's final punctuation among the committed words (the buffer is then
cut after that word, so the model's input stays short), at a pause (``pause_s`` of quiet audio:
the buffer is transcribed once more and every word is taken, unless it starts after the last voice
heard, i.e. only quiet followed the last sentence) or when it reaches
``max_utterance_s``. Shorter pauses stay inside the buffer, so the model keeps the sentence's context.
Each closed utterance carries its words with session times; the words channel then puts each word
on the windows it was spoken in. Committed words of the utterance still being spoken are final too
(:attr:`StreamingTranscriber.open_words`): a window need not wait for the end of the sentence.

The quick start gives way to load: a pass every second is taken only while the last pass over a
buffer that short took at most ``quick_budget_s`` of wall time (a device busy with other rooms makes
every pass slower, so the rooms there fall back to ``step_s`` by themselves and resume once passes
are quick again; the regular passes inside the quick start's span keep measuring), and only when
the caller says it is not behind (``feed(quick=False)``). A caller that is further behind, with more
audio waiting for the model, defers the passes (``feed(defer=True)``) and catches up in one pass
over all of it instead of one per ``step_s``: each pass transcribes the whole buffer again, so the
passes skipped are the dearest ones.

Everything here runs on the caller's thread and keeps audio in memory only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.transcribe.base import Transcriber, Word

logger = logging.getLogger(__name__)

GAP_TOLERANCE_S = 0.05
ONSET_S = 0.3  # quiet audio kept before the first voiced audio of an utterance
TAIL_S = 0.5  # voice heard this little after a closed sentence's last word is that word's tail
REPEAT_TOLERANCE_S = 0.1  # a hypothesis word starting this much before the last committed word's end is old
MAX_OVERLAP_WORDS = 5  # committed words a new hypothesis may repeat at its start
QUICK_STEP_S = 1.0  # the step while the buffer is shorter than quick_start_s (the windows' hop)
QUICK_BUDGET_S = 0.2  # wall time of a pass over a short buffer up to which quick passes go on
PROMPT_CHARS = 200  # text said before the buffer, given to the model as context
SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def normalised(word: Word) -> str:
    """A word compared without case or punctuation ("Country." agrees with "country")."""
    return re.sub(r"[^\w']", "", word.text.lower())


@dataclass(frozen=True)
class SpokenUtterance:
    """A closed stretch of speech: its words in session time and what transcribing it cost."""

    words: tuple[Word, ...]
    passes: int  # transcriptions of the buffer while it was spoken
    seconds: float  # wall time of those transcriptions

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def start_s(self) -> float:
        return self.words[0].start_s

    @property
    def end_s(self) -> float:
        return self.words[-1].end_s


class LocalAgreement:
    """Commits the words two consecutive hypotheses agree on (as a common prefix after what is
    already committed)."""

    def __init__(self) -> None:
        self.committed: list[Word] = []  # of the open utterance
        self._previous: list[Word] = []  # the last hypothesis's words after the committed ones
        self._last_end = -np.inf  # end of the newest committed word, kept across utterances

    def _unseen(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The hypothesis without the words already committed. The buffer starts with the open
        utterance's committed words, so the hypothesis usually repeats them first; when the model
        changed one of them, words are told apart by time (those starting before the last committed
        word ended are old) and by a repetition of the committed tail."""
        count = len(self.committed)
        if count and [normalised(w) for w in hypothesis[:count]] == [normalised(w) for w in self.committed]:
            return list(hypothesis[count:])
        new = [w for w in hypothesis if w.start_s >= self._last_end - REPEAT_TOLERANCE_S]
        if new and self.committed:
            tail = [normalised(w) for w in self.committed[-MAX_OVERLAP_WORDS:]]
            for k in range(min(len(tail), len(new)), 0, -1):
                if tail[-k:] == [normalised(w) for w in new[:k]]:
                    return new[k:]
        return new

    @property
    def pending(self) -> list[Word]:
        """The last hypothesis's words not yet committed."""
        return list(self._previous)

    def insert(self, hypothesis: Sequence[Word]) -> list[Word]:
        """Compare a new hypothesis (session times) with the previous one; returns the words
        committed by it."""
        new = self._unseen(hypothesis)
        agreed: list[Word] = []
        for previous, word in zip(self._previous, new, strict=False):
            if normalised(previous) != normalised(word):
                break
            agreed.append(word)  # the newer word: its punctuation and times saw more audio
        self._previous = new[len(agreed) :]
        self._commit(agreed)
        return agreed

    def flush(self, hypothesis: Sequence[Word]) -> list[Word]:
        """At the end of speech: the final hypothesis is taken whole."""
        new = self._unseen(hypothesis)
        self._previous = []
        self._commit(new)
        return new

    def _commit(self, words: Sequence[Word]) -> None:
        if words:
            self.committed.extend(words)
            self._last_end = max(self._last_end, words[-1].end_s)

    def take(self, count: int) -> list[Word]:
        """Remove and return the first ``count`` committed words (a closed sentence)."""
        taken, self.committed = self.committed[:count], self.committed[count:]
        return taken

    def reset(self) -> None:
        """Forget the open utterance (its audio was dropped)."""
        self.committed, self._previous = [], []


class StreamingTranscriber:
    """One per session; not thread-safe. Feed it the room's new audio in order with whether that
    audio is voiced; it returns the utterances that closed."""

    def __init__(
        self,
        transcriber: Transcriber,
        *,
        step_s: float = 2.0,
        pause_s: float = 2.0,
        max_utterance_s: float = 15.0,
        quick_start_s: float = 0.0,
        quick_budget_s: float | None = QUICK_BUDGET_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.transcriber = transcriber
        self.clock = clock  # measures the passes
        self.step = round(step_s * SAMPLE_RATE)
        # While the buffer is shorter than quick_start_s, a pass every QUICK_STEP_S (passes over a
        # short buffer are cheap): a sentence's first words need not wait two full steps.
        self.quick_step = min(self.step, round(QUICK_STEP_S * SAMPLE_RATE))
        self.quick_until = round(quick_start_s * SAMPLE_RATE)
        self.quick_budget_s = quick_budget_s  # None: quick passes whatever they cost
        self.quick_cost_s = 0.0  # wall time of the last pass over a buffer shorter than quick_until
        self.quick_declined = 0  # quick passes not taken because passes were slow or the caller behind
        self.withheld = 0  # passes whose doubtful answer the transcriber withheld (edge.transcribe.faster)
        self.quiet_ends = 0  # speech ended with only quiet after its last sentence: no last pass
        self._voiced_until: float | None = None  # session time where the last voice heard ends
        self._cut = False  # a sentence of the speech going on closed: the buffer starts after it
        self.pause = round(pause_s * SAMPLE_RATE)
        self._quiet = 0  # samples of quiet audio since the last voiced audio
        self.max_samples = round(max_utterance_s * SAMPLE_RATE)
        self.agreement = LocalAgreement()
        self._audio = np.zeros(0, dtype=np.float32)
        self._start_s = 0.0  # session time of the buffer's first sample
        self._speech = False
        self._unseen = 0  # samples of speech since the last transcription
        self._fed_until: float | None = None
        self._prompt = ""
        self._heard_until = 0.0  # session time of the buffer's end at the last transcription
        self._passes = 0
        self._seconds = 0.0

    @property
    def speaking(self) -> bool:
        return self._speech

    @property
    def settled_until(self) -> float:
        """Session time up to which every word said is committed: windows ending here or earlier
        have all their words (those of the speech going on in :attr:`open_words`)."""
        if self._fed_until is None:
            return 0.0
        if not self._speech:
            return self._fed_until
        pending = self.agreement.pending
        return max(self._start_s, pending[0].start_s if pending else self._heard_until)

    @property
    def voiced_until(self) -> float | None:
        """Session time where the last voice heard ends (None: the caller does not say)."""
        return self._voiced_until

    @property
    def open_words(self) -> tuple[Word, ...]:
        """The committed words of the utterance still being spoken."""
        return tuple(self.agreement.committed) if self._speech else ()

    @property
    def buffered_s(self) -> float:
        return self._audio.shape[0] / SAMPLE_RATE

    def feed(
        self,
        audio: npt.NDArray[np.float32],
        start_s: float,
        *,
        voiced: bool,
        onset_s: float | None = None,
        voiced_until_s: float | None = None,
        quick: bool = True,
        defer: bool = False,
    ) -> list[SpokenUtterance]:
        """New audio starting at session time ``start_s`` (contiguous with what came before, or after a
        gap, which ends the speech before it); ``onset_s``: where voice starts in it, when known;
        ``voiced_until_s``: where the last voice heard so far ends, when known (a voice-activity
        frame's end; see :meth:`finish`);
        ``quick``: whether the caller has time for a quick pass (False when more audio waits);
        ``defer``: more audio waits, so no pass now (a pause or the longest utterance still closes the
        speech): the next feed that does not defer passes over all of it at once."""
        closed: list[SpokenUtterance] = []
        if self._fed_until is not None and start_s > self._fed_until + GAP_TOLERANCE_S:
            closed += self.finish()
        self._fed_until = start_s + audio.shape[0] / SAMPLE_RATE
        if voiced_until_s is not None:
            self._voiced_until = max(self._voiced_until or voiced_until_s, voiced_until_s)
        if voiced and not self._speech:
            # The quiet audio just before stays as the onset of the speech.
            self._speech, self._unseen, self._cut = True, 0, False
            self._passes, self._seconds = 0, 0.0
        if self._speech:
            self._quiet = 0 if voiced else self._quiet + audio.shape[0]
            self._append(audio, start_s)
            if self._passes == 0 and self._unseen == 0 and onset_s is not None:
                self._trim_onset(onset_s)
            before, self._unseen = self._unseen, self._unseen + audio.shape[0]
            if self._quiet >= self.pause or self._audio.shape[0] >= self.max_samples:
                closed += self.finish()  # a pause, or the longest utterance
            elif self._unseen >= self._next_step(quick and not defer, before) and not defer:
                self._unseen = 0
                hypothesis = self._hypothesis(provisional=True)
                if hypothesis is not None:
                    self.agreement.insert(hypothesis)
                    closed += self._sentences()
        else:
            self._audio, self._start_s = audio.astype(np.float32, copy=True), start_s
        return closed

    def _next_step(self, quick: bool, before: int) -> int:
        """Samples of new speech the next pass waits for: the quick step at a sentence's start while
        passes are cheap and the caller keeps up, ``step`` otherwise. ``before``: the unseen samples
        before the newest audio (a declined quick pass is counted once)."""
        if self._audio.shape[0] >= self.quick_until or self._unseen >= self.step:
            return self.step
        budget = self.quick_budget_s
        if quick and (budget is None or self.quick_cost_s <= budget):
            return self.quick_step
        if before < self.quick_step <= self._unseen:
            self.quick_declined += 1
        return self.step

    def finish(self) -> list[SpokenUtterance]:
        """End the speech going on: transcribe the buffer once more and take every word. When the
        buffer holds no word yet and starts after the last voice heard (its sentence closed, and
        only quiet followed), there is nothing to transcribe: Whisper, given quiet, tends to write
        a polite phrase, and the pass that would refuse it is the dearest of all."""
        if not self._speech:
            return []
        if self._heard_nothing():
            self.quiet_ends += 1
        else:
            self.agreement.flush(self._hypothesis(provisional=False) or [])
        closed = self._sentences()
        rest = self.agreement.take(len(self.agreement.committed))
        if rest:
            closed.append(self._close(rest))
        self._speech, self._quiet = False, 0
        self._audio = np.zeros(0, dtype=np.float32)
        self._start_s = self._fed_until or self._start_s
        self.agreement.reset()
        return closed

    def _heard_nothing(self) -> bool:
        """Whether a sentence of the speech closed and the buffer after it holds no committed or
        pending word and no voice (but that sentence's tail: Whisper's word times and the voice
        activity's frames differ a little). Speech with no closed sentence always gets its pass."""
        return (
            self._cut
            and self._voiced_until is not None
            and self._voiced_until <= self._start_s + TAIL_S
            and not self.agreement.committed
            and not self.agreement.pending
        )

    def skip(self) -> None:
        """Drop the speech going on without transcribing it (the device is behind)."""
        self._speech, self._quiet = False, 0
        self._audio = np.zeros(0, dtype=np.float32)
        self._start_s = self._fed_until or self._start_s
        self.agreement.reset()

    def _trim_onset(self, onset_s: float) -> None:
        """Start the speech's buffer ``ONSET_S`` before its first voiced audio: quiet audio before it
        only misleads the model's first word times."""
        drop = round((onset_s - ONSET_S - self._start_s) * SAMPLE_RATE)
        if drop > 0:
            drop = min(drop, self._audio.shape[0])
            self._audio, self._start_s = self._audio[drop:], self._start_s + drop / SAMPLE_RATE

    def _append(self, audio: npt.NDArray[np.float32], start_s: float) -> None:
        if self._audio.shape[0] == 0:
            self._start_s = start_s
        self._audio = np.concatenate([self._audio, audio.astype(np.float32, copy=False)])

    def _hypothesis(self, *, provisional: bool) -> list[Word] | None:
        """The words of the whole buffer; None when a provisional pass's answer was withheld (the
        words heard so far then stay unsettled until a later pass answers)."""
        t0 = self.clock()
        transcript = self.transcriber.transcribe(
            self._audio, words=True, prompt=self._prompt, vad=False, provisional=provisional
        )
        spent = self.clock() - t0
        self._seconds += spent
        if self._audio.shape[0] < self.quick_until:
            self.quick_cost_s = spent
        self._passes += 1
        end = self._start_s + self.buffered_s
        if transcript.withheld:
            self.withheld += 1
            return None
        self._heard_until = end
        return [
            Word(min(w.start_s + self._start_s, end), min(w.end_s + self._start_s, end), w.text)
            for w in transcript.words
        ]

    def _sentences(self) -> list[SpokenUtterance]:
        """Close the committed words up to the last sentence end; the buffer then starts after it."""
        committed = self.agreement.committed
        ends = [i for i, w in enumerate(committed) if SENTENCE_END.search(w.text)]
        if not ends:
            return []
        closed: list[SpokenUtterance] = []
        first = 0
        for end in ends:
            closed.append(self._close(committed[first : end + 1]))
            first = end + 1
        cut = committed[ends[-1]].end_s
        self.agreement.take(ends[-1] + 1)
        drop = min(self._audio.shape[0], max(0, round((cut - self._start_s) * SAMPLE_RATE)))
        self._audio, self._start_s = self._audio[drop:], self._start_s + drop / SAMPLE_RATE
        self._cut = True
        return closed

    def _close(self, words: Sequence[Word]) -> SpokenUtterance:
        utterance = SpokenUtterance(tuple(words), self._passes, self._seconds)
        self._passes, self._seconds = 0, 0.0
        self._prompt = (self._prompt + " " + utterance.text).strip()[-PROMPT_CHARS:]
        return utterance
