"""The shared affect space: class places on Russell's circumplex, the voice's vote from its cues,
the fused place, and calm where the face model has no calm class."""

from __future__ import annotations

import numpy as np
import pytest

from clinic_signals.fusion import ChannelVote, LateFusion, WindowFusion, calm, cue_distribution
from contract.classes import CLASS_AFFECT, CLASSES, affect_of, distribution_of
from edge.config.models import FusionConfig

NEUTRAL_FACE = tuple(0.72 if c == "neutral" else 0.04 for c in CLASSES)
HAPPY_FACE = tuple(0.72 if c == "happy" else 0.04 for c in CLASSES)


@pytest.mark.unit
def test_class_places_follow_russell() -> None:
    assert CLASS_AFFECT["neutral"] == (0.0, 0.0)
    for name in ("happy", "calm", "surprised"):
        assert CLASS_AFFECT[name][0] > 0  # pleasant
    for name in ("sad", "angry", "fearful", "disgust"):
        assert CLASS_AFFECT[name][0] < 0  # unpleasant
    assert CLASS_AFFECT["calm"][1] < 0 and CLASS_AFFECT["sad"][1] < 0  # deactivated
    assert CLASS_AFFECT["angry"][1] > 0.9 and CLASS_AFFECT["surprised"][1] > 0.9  # activated
    assert all(abs(np.hypot(*p) - 1) < 1e-3 for c, p in CLASS_AFFECT.items() if c != "neutral")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("valence", "arousal", "nearest"),
    [(0.9, 0.1, "happy"), (0.6, -0.6, "calm"), (-0.8, -0.4, "sad"), (0.0, 0.0, "neutral")],
)
def test_a_place_is_most_likely_its_nearest_class(valence: float, arousal: float, nearest: str) -> None:
    probs = distribution_of(valence, arousal)
    assert CLASSES[int(np.argmax(probs))] == nearest
    assert sum(probs) == pytest.approx(1.0)


@pytest.mark.unit
def test_cues_alone_never_carry_a_label() -> None:
    for valence, arousal in [(0.9, 0.1), (-0.8, -0.4), (-0.2, 0.98)]:
        assert max(cue_distribution(valence, arousal, confidence=1.0)) < 1 / 3
    flat = cue_distribution(-0.8, -0.4, confidence=0.0)
    assert max(flat) - min(flat) < 1e-4  # no confidence, no information


@pytest.mark.unit
@pytest.mark.parametrize(
    ("valence", "arousal", "neutral_left"),
    [
        (0.2, 0.0, 0.72),  # not low arousal: unchanged
        (-0.2, -0.6, 0.72),  # unpleasant: unchanged
        (0.2, -0.3, 0.36),  # half-way: half of neutral is calm
        (0.2, -0.7, 0.0),  # low: all of it
    ],
)
def test_neutral_becomes_calm_with_low_arousal(valence: float, arousal: float, neutral_left: float) -> None:
    out = calm(np.asarray(NEUTRAL_FACE), valence, arousal)
    assert out[CLASSES.index("neutral")] == pytest.approx(neutral_left)
    assert out.sum() == pytest.approx(1.0)
    assert np.array_equal(calm(np.asarray(HAPPY_FACE), valence, arousal), np.asarray(HAPPY_FACE))


def _fuse(
    face: tuple[float, ...], voice: tuple[float, float] | None
) -> tuple[str | None, float | None, dict[str, float]]:
    votes = [ChannelVote("face", face, "good", 0.9)]
    if voice is not None:
        probs = cue_distribution(*voice, confidence=1.0)
        votes.append(ChannelVote("voice", probs, "good", 0.5, voice))
    result = WindowFusion(LateFusion({}), FusionConfig())(votes)
    return result.label, result.arousal, result.contributions


@pytest.mark.unit
def test_a_neutral_face_and_a_calm_voice_are_calm() -> None:
    label, arousal, contributions = _fuse(NEUTRAL_FACE, (0.4, -0.8))
    assert label == "calm" and arousal is not None and arousal < -0.1
    assert set(contributions) == {"face", "voice"}
    assert contributions["voice"] > 0  # the voice made it calm
    assert _fuse(NEUTRAL_FACE, None)[0] == "neutral"  # the face alone: neutral
    assert _fuse(NEUTRAL_FACE, (0.4, 0.5))[0] == "neutral"  # an activated voice: not calm


@pytest.mark.unit
def test_the_fused_place_weighs_the_channels() -> None:
    _, arousal_face, _ = _fuse(HAPPY_FACE, None)
    assert arousal_face == pytest.approx(affect_of(HAPPY_FACE)[1], abs=1e-3)
    _, arousal_both, _ = _fuse(HAPPY_FACE, (0.0, -1.0))
    assert arousal_both is not None and arousal_face is not None and arousal_both < arousal_face
