"""The guard against words that were never said (edge.transcribe.guard), on transcription segments as
the engines return them: the loop reported from a room hearing a warbling tone (161 rows of
"Whoo-hoo!" / "Whoo!", many zero-length and repeating) is refused; real speech passes unchanged."""

from __future__ import annotations

import pytest

from edge.transcribe.base import Segment
from edge.transcribe.guard import compression_ratio, count, guard, repeats_itself

JFK = [
    Segment(0.0, 4.2, " And so my fellow Americans,", no_speech_prob=0.01, avg_logprob=-0.25, compression_ratio=1.1),
    Segment(4.2, 8.1, " ask not what your country can do for you,", no_speech_prob=0.01, avg_logprob=-0.2),
    Segment(8.1, 11.0, " ask what you can do for your country.", no_speech_prob=0.02, avg_logprob=-0.3),
]

# The tone's transcript as whisper.cpp gave it (times in seconds; no Whisper probabilities).
TONE = [Segment(17.48, 17.48, " Whoo-hoo!"), Segment(17.48, 17.48, " Whoo!")] + [
    Segment(17.48 + 0.5 * i, 17.48 + 0.5 * i + (0.0 if i % 2 else 0.4), " Whoo-hoo!" if i % 3 else " Whoo!")
    for i in range(159)
]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "segments", "kept", "reasons"),
    [
        ("real speech", JFK, 3, {}),
        ("two of the same in a row are speech", [Segment(0, 0.5, " Yes."), Segment(0.6, 1.0, " Yes.")], 2, {}),
        (
            "alternating phrases that keep coming back",
            [Segment(i, i + 0.4, " Whoo-hoo!" if i % 2 else " Whoo!") for i in range(6)],
            0,
            {"loop": 6},
        ),
        (
            "three of the same in a row are a loop",
            [
                Segment(0, 0.5, " Whoo!"),
                Segment(0.6, 1.0, " Whoo!"),
                Segment(1.1, 1.5, " Whoo!"),
                Segment(2, 3, " OK."),
            ],
            1,
            {"loop": 3},
        ),
        (
            "a phrase said over and over in one segment",
            [Segment(0, 3, " Whoo-hoo! Whoo-hoo! Whoo-hoo!")],
            0,
            {"loop": 1},
        ),
        ("no duration", [Segment(5.0, 5.0, " Thank you.")], 0, {"zero-length": 1}),
        (
            "Whisper says it is not speech",
            [Segment(0, 2, " Thank you.", no_speech_prob=0.92, avg_logprob=-1.4)],
            0,
            {"no-speech": 1},
        ),
        (
            "unsure but speech (Whisper's rule needs both)",
            [Segment(0, 2, " Thank you.", no_speech_prob=0.92, avg_logprob=-0.3)],
            1,
            {},
        ),
        (
            "compresses like repetition",
            [
                Segment(
                    0, 9, " I went to the shop and I went to the shop and I went to the shop and I went to the shop."
                )
            ],
            0,
            {"repetitive": 1},
        ),
        ("empty text is nothing", [Segment(0, 1, "  ")], 0, {}),
    ],
)
def test_the_guard_refuses_what_was_never_said(
    name: str, segments: list[Segment], kept: int, reasons: dict[str, int]
) -> None:
    passed, refused = guard(segments)
    assert len(passed) == kept, name
    assert dict(count(refused)) == reasons, name
    assert all(s in segments for s in passed)


@pytest.mark.unit
def test_the_reported_tone_loop_leaves_no_word() -> None:
    passed, refused = guard(TONE)
    assert passed == [] and len(refused) == len(TONE)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "loop"),
    [("Whoo! Whoo! Whoo!", True), ("la la la la", True), ("no no", False), ("I said no, no, no way", False)],
)
def test_a_phrase_repeated(text: str, loop: bool) -> None:
    assert repeats_itself(text) is loop


@pytest.mark.unit
def test_ordinary_sentences_compress_little() -> None:
    assert compression_ratio("I went for a long walk with my sister and we left a lot.") < 2.4
