"""Words that were never said: Whisper's own guards and two of ours, applied to every segment before
its words reach the room.

Whisper, given sound that is not speech (a ringtone, music, a hum), can write words anyway, often the
same ones again and again, sometimes with no duration. A segment is refused when

* Whisper itself doubts it: its no-speech probability is above 0.6 while its mean log-probability is
  below -1.0 (the reference implementation's rule for silence), or its text compresses by more than
  2.4 (zlib: the reference's repetition guard); where the engine does not report these (whisper.cpp)
  the compression is computed from the text;
* it has no duration (under 50 ms) but has text;
* its words come back three times or more among the twelve segments around it, or its own text is one
  short phrase said three times or more (a repetition loop, alternating phrases included).

Refused segments are counted by reason (the run report) and never analysed.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

NO_SPEECH = 0.6
LOG_PROB = -1.0
COMPRESSION = 2.4
MIN_SECONDS = 0.05
LOOP = 3  # this many of the same text close together are a loop
_NORMAL = re.compile(r"[^a-z0-9']+")


class SegmentLike(Protocol):
    """What the guard reads of a transcription segment (:class:`edge.transcribe.base.Segment`)."""

    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def text(self) -> str: ...
    @property
    def no_speech_prob(self) -> float | None: ...
    @property
    def avg_logprob(self) -> float | None: ...
    @property
    def compression_ratio(self) -> float | None: ...


S = TypeVar("S", bound=SegmentLike)


@dataclass(frozen=True)
class Refused(Generic[S]):
    segment: S
    reason: str  # no-speech | repetitive | zero-length | loop


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _normal(text: str) -> str:
    return _NORMAL.sub(" ", text.lower()).strip()


def repeats_itself(text: str) -> bool:
    """Whether ``text`` is one short phrase (up to three words) said ``LOOP`` times or more."""
    tokens = _normal(text).split()
    for n in (1, 2, 3):
        if len(tokens) >= LOOP * n and len(tokens) % n == 0 and tokens == tokens[:n] * (len(tokens) // n):
            return True
    return False


def _doubt(s: SegmentLike) -> str | None:
    doubtful = s.no_speech_prob is not None and s.avg_logprob is not None
    if doubtful and s.no_speech_prob > NO_SPEECH and s.avg_logprob < LOG_PROB:  # type: ignore[operator]
        return "no-speech"
    if repeats_itself(s.text):
        return "loop"
    ratio = s.compression_ratio if s.compression_ratio is not None else compression_ratio(s.text.strip())
    if ratio > COMPRESSION:
        return "repetitive"
    if s.end_s - s.start_s < MIN_SECONDS:
        return "zero-length"
    return None


def guard(segments: Sequence[S]) -> tuple[list[S], list[Refused[S]]]:
    """The segments that may be analysed, and those refused with why."""
    spoken = [s for s in segments if s.text.strip()]
    texts = [_normal(s.text) for s in spoken]
    width = 4 * LOOP + 1  # a text said LOOP times among this many segments around it is a loop
    looped = set()
    for i, t in enumerate(texts):
        first = max(0, min(i - width // 2, len(texts) - width))  # a full window at the ends too
        if t and texts[first : first + width].count(t) >= LOOP:
            looped.add(i)
    kept: list[S] = []
    refused: list[Refused[S]] = []
    for i, s in enumerate(spoken):
        why = "loop" if i in looped else _doubt(s)
        if why is None:
            kept.append(s)
        else:
            refused.append(Refused(s, why))
    return kept, refused


def count(refused: Sequence[Refused[S]]) -> Counter[str]:
    return Counter(r.reason for r in refused)
