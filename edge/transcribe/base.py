"""The transcriber interface and its two back-ends' common behaviour."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.transcribe.vad import voiced_chunks

logger = logging.getLogger(__name__)

Backend = Literal["whisper.cpp", "faster-whisper"]


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    audio_s: float  # seconds of audio given
    voiced_s: float  # seconds that voice activity detection passed on to the model
    seconds: float  # wall time of the transcription

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.audio_s if self.audio_s else 0.0


class Transcriber(ABC):
    """Transcribes mono float32 audio at 16 kHz; only voiced stretches reach the model."""

    name: ClassVar[str]

    def __init__(self, *, vad: bool = True) -> None:
        self.vad = vad

    @abstractmethod
    def _transcribe(self, audio: npt.NDArray[np.float32]) -> list[Segment]: ...

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcript:

        started = time.perf_counter()
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        chunks = voiced_chunks(audio) if self.vad else [(0.0, audio)]
        segments: list[Segment] = []
        for offset, chunk in chunks:
            segments.extend(Segment(s.start_s + offset, s.end_s + offset, s.text) for s in self._transcribe(chunk))
        return Transcript(
            segments=tuple(segments),
            audio_s=audio.shape[0] / SAMPLE_RATE,
            voiced_s=sum(c.shape[0] for _, c in chunks) / SAMPLE_RATE,
            seconds=time.perf_counter() - started,
        )

    def close(self) -> None:  # noqa: B027 - optional
        """Release the model."""
