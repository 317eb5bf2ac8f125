"""The transcriber interface and its two back-ends' common behaviour."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.transcribe.guard import Refused, count, guard
from edge.transcribe.vad import voiced_chunks

logger = logging.getLogger(__name__)

Backend = Literal["whisper.cpp", "faster-whisper"]
AudioContext = Literal["fitted", "full"]  # what faster-whisper's encoder sees (edge.transcribe.faster)


@dataclass(frozen=True)
class Word:
    """One word with its time in the audio given (seconds); punctuation stays on the word."""

    start_s: float
    end_s: float
    text: str

    def shifted(self, offset_s: float) -> Word:
        return Word(self.start_s + offset_s, self.end_s + offset_s, self.text)


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()  # filled when word times were asked for
    # Whisper's own view of the segment, where the engine reports it (faster-whisper does)
    no_speech_prob: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None

    def shifted(self, offset_s: float) -> Segment:
        words = tuple(w.shifted(offset_s) for w in self.words)
        return replace(self, start_s=self.start_s + offset_s, end_s=self.end_s + offset_s, words=words)


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]  # those the guard let through (edge.transcribe.guard)
    audio_s: float  # seconds of audio given
    voiced_s: float  # seconds that voice activity detection passed on to the model
    seconds: float  # wall time of the transcription
    refused: tuple[Refused[Segment], ...] = ()  # segments the guard refused: never analysed
    # A provisional pass the back-end gave no answer for (its answer was doubtful and checking it
    # would cost more than the later pass over the same speech): not "nothing was said".
    withheld: bool = False

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.audio_s if self.audio_s else 0.0


class Transcriber(ABC):
    """Transcribes mono float32 audio at 16 kHz; only voiced stretches reach the model."""

    name: ClassVar[str]

    def __init__(self, *, vad: bool = True) -> None:
        self.vad = vad
        self.refused: Counter[str] = Counter()  # segments refused by the guard, by reason, since start
        # One transcription at a time: the native model contexts are not thread-safe.
        self.lock = threading.Lock()
        # Threads the engine started when it loaded (its workers): they run the passes, so they
        # share the priority of the thread that asks for them (edge.native.lower_priority).
        self.threads: frozenset[int] = frozenset()
        self.cpu_threads = 0  # threads the engine was asked to compute with on the CPU

    @abstractmethod
    def _transcribe(
        self, audio: npt.NDArray[np.float32], *, words: bool, prompt: str, provisional: bool
    ) -> list[Segment] | None:
        """Segments of ``audio`` (times from its start), with word times when ``words``; ``prompt`` is
        text said just before, given to the model as context. ``provisional``: a later pass over more
        of the same speech will be transcribed too (a streaming hypothesis), so the back-end may
        return None, no answer, rather than pay for checking a doubtful one."""

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        words: bool = False,
        prompt: str = "",
        vad: bool | None = None,
        provisional: bool = False,
    ) -> Transcript:
        """Transcribe ``audio``; with ``words`` each segment carries its words' times. ``vad`` overrides
        the transcriber's voice activity detection (streaming audio is already cut at speech);
        ``provisional``: see :meth:`_transcribe` (a withheld answer is a transcript with ``withheld``
        set and no segments)."""
        with self.lock:
            started = time.perf_counter()
            audio = np.ascontiguousarray(audio, dtype=np.float32)
            chunks = voiced_chunks(audio) if (self.vad if vad is None else vad) else [(0.0, audio)]
            segments: list[Segment] = []
            withheld = False
            for offset, chunk in chunks:
                found = self._transcribe(chunk, words=words, prompt=prompt, provisional=provisional)
                if found is None:
                    withheld, segments = True, []
                    break
                segments.extend(s.shifted(offset) for s in found)
            kept, refused = guard(segments)
            self.refused.update(count(refused))
            if refused:
                logger.debug("transcription: %d segments refused (%s)", len(refused), dict(count(refused)))
        return Transcript(
            segments=tuple(kept),
            refused=tuple(refused),
            audio_s=audio.shape[0] / SAMPLE_RATE,
            voiced_s=sum(c.shape[0] for _, c in chunks) / SAMPLE_RATE,
            seconds=time.perf_counter() - started,
            withheld=withheld,
        )

    def close(self) -> None:  # noqa: B027 - optional
        """Release the model."""
