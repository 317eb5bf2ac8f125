"""Fusion that explains itself: calibrated fusion with abstention and mixed results, exact Shapley
contributions, the face occlusion map on a real face, voice segments, disparity events, and the
temperature fit. Real MediaPipe and ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from skimage import data

from clinic_signals.fusion import BASELINE, ChannelVote, LateFusion, WindowFusion
from clinic_signals.temperature import expected_calibration_error, fit_temperature, nll
from contract import payload as wire
from contract.classes import CLASSES
from contract.temperature import scaled
from edge.channels.registry import default_registry
from edge.config.models import FusionConfig, OnnxRuntimeBackendConfig
from edge.disparity.score import DisparityTracker
from edge.disparity.score import disparity as score_disparity
from edge.explain.maps import face_occlusion, region_of_cells
from edge.inference import FaceExpressionModel, create_engine, load_manifest
from edge.publish import payload as p
from edge.results import GOOD, Disparity, FaceChannel, FaceCrop, VoiceChannel, WordsChannel
from export.cli import main
from tests.faces import face_crop

HAPPY = (0.05, 0.0, 0.8, 0.05, 0.05, 0.025, 0.0, 0.025)
SAD = (0.1, 0.0, 0.0, 0.7, 0.1, 0.05, 0.05, 0.0)
ANGRY = (0.05, 0.0, 0.0, 0.15, 0.7, 0.05, 0.05, 0.0)
FLAT = tuple([0.125] * 8)


def _dist(label: str, p: float) -> tuple[float, ...]:
    rest = (1 - p) / 7
    return tuple(p if c == label else rest for c in CLASSES)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("votes", "weights"),
    [
        ([("face", HAPPY, 1.0), ("voice", SAD, 1.0), ("words", ANGRY, 1.0)], {}),
        ([("face", HAPPY, 0.9), ("voice", SAD, 0.4), ("words", SAD, 0.25)], {"face": 2.0, "voice": 0.5}),
        ([("face", HAPPY, 1.0), ("words", HAPPY, 1.0)], {}),
        ([("voice", SAD, 0.8)], {}),
    ],
)
@pytest.mark.parametrize("temperature", [1.0, 1.7])
def test_shapley_values_sum_to_the_fused_output_minus_the_baseline(
    votes: list[tuple[str, tuple[float, ...], float]], weights: dict[str, float], temperature: float
) -> None:
    fusion = WindowFusion(LateFusion(weights), FusionConfig(temperature=temperature, min_confidence=0.0))
    result = fusion([ChannelVote(name, probs, GOOD, r) for name, probs, r in votes])
    assert result.probs is not None
    best = int(np.argmax(result.probs))
    assert sum(result.contributions.values()) == pytest.approx(result.probs[best] - BASELINE, abs=1e-4)
    assert set(result.contributions) == {name for name, _, _ in votes}


@pytest.mark.unit
def test_a_removed_channel_gets_zero_contribution() -> None:
    fusion = WindowFusion(LateFusion({"voice": 0.0}), FusionConfig())
    votes = [ChannelVote("face", HAPPY, GOOD), ChannelVote("voice", SAD, GOOD), ChannelVote("words", SAD, "no_words")]
    result = fusion(votes)
    assert result.used == ("face", "voice")
    assert result.contributions["voice"] == pytest.approx(0.0, abs=1e-9)  # weight 0: it changes nothing
    assert "words" not in result.contributions  # not good: not fused, no contribution
    assert result.contributions["face"] == pytest.approx(max(HAPPY) - BASELINE, abs=1e-4)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("face", "words", "state", "label", "second"),
    [
        (_dist("happy", 0.9), _dist("happy", 0.8), "confident", "happy", None),
        (_dist("happy", 0.34), _dist("sad", 0.3), "mixed", "happy", "sad"),
        (_dist("happy", 0.3), _dist("neutral", 0.2), "uncertain", None, None),
        (FLAT, FLAT, "mixed", "neutral", "calm"),
    ],
)
def test_abstention_and_mixed_emotions(
    face: tuple[float, ...], words: tuple[float, ...], state: str, label: str | None, second: str | None
) -> None:
    config = FusionConfig(min_confidence=0.4, mixed_margin=0.1)
    result = WindowFusion(LateFusion({}), config)([ChannelVote("face", face, GOOD), ChannelVote("words", words, GOOD)])
    if face == FLAT:  # everything equally likely: two top classes together are far below the level
        assert (result.state, result.label) == ("uncertain", None)
        return
    assert (result.state, result.label, result.second) == (state, label, second)
    assert result.probs is not None  # the distribution is kept even when the window abstains


@pytest.mark.unit
def test_temperature_fit_calibrates_an_overconfident_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 8, n)
    logits = rng.normal(0, 1, (n, 8))
    logits[np.arange(n), labels] += 1.0  # right about half the time...
    probs = scaled(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.3)  # ...but sure of itself
    t = fit_temperature(probs, labels)
    assert t > 1.5
    assert nll(probs, labels, t) < nll(probs, labels)
    assert expected_calibration_error(scaled(probs, t), labels) < expected_calibration_error(probs, labels)
    heldout = tmp_path / "windows.npz"
    np.savez(heldout, probs=probs, labels=np.array(CLASSES)[labels])
    assert main(["fit-temperature", "--heldout", str(heldout), "--out", str(tmp_path / "t.json")]) == 0
    evidence = json.loads((tmp_path / "t.json").read_text())
    assert evidence["temperature"] == pytest.approx(t, rel=1e-3) and evidence["windows"] == n
    np.savez(tmp_path / "bad.npz", probs=probs, labels=np.array(["joy"] * n))
    assert main(["fit-temperature", "--heldout", str(tmp_path / "bad.npz")]) != 0


@pytest.fixture(scope="module")
def face_model(face_model: Path) -> FaceExpressionModel:  # type: ignore[override]
    return FaceExpressionModel(create_engine(face_model, load_manifest(face_model), [OnnxRuntimeBackendConfig()]))


@pytest.mark.unit
def test_face_map_moves_to_the_eyes_when_the_mouth_is_occluded(face_model: FaceExpressionModel) -> None:
    """The smiling astronaut: the smile carries 'happy'; with the mouth covered, the eyes must carry
    more of what is left. The map is 8 x 8 numbers, computed through the room's engine."""
    image = data.astronaut()
    crop = face_crop(image, face_model.input_size)
    happy = CLASSES.index("happy")
    grid, shares = face_occlusion(face_model, crop, happy)
    assert grid.shape == (8, 8)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(shares, key=lambda k: shares[k]) == "mouth"
    regions = region_of_cells(crop, 8)
    assert regions[3 * 8 + 2] == "eyes" or regions[3 * 8 + 5] == "eyes"  # eyes in the upper middle rows

    covered = crop.pixels.copy()
    cells = [i for i, r in enumerate(regions) if r == "mouth"]
    edge = 64 // 8
    for i in cells:
        r, c = divmod(i, 8)
        covered[r * edge : (r + 1) * edge, c * edge : (c + 1) * edge] = int(crop.pixels.mean())
    masked = FaceCrop(covered, crop.eyes, crop.nose)
    _, shares_masked = face_occlusion(face_model, masked, happy)
    assert shares_masked["mouth"] < shares["mouth"]
    assert shares_masked["eyes"] > shares["eyes"], (shares, shares_masked, regions)


def disparity(face: FaceChannel | None, voice: VoiceChannel | None, words: WordsChannel | None) -> Disparity | None:
    """The window's disparity from the product's channels' valences."""
    results = {k: v for k, v in (("face", face), ("voice", voice), ("words", words)) if v is not None}
    return score_disparity(default_registry().valences(results))


def _face(probs: tuple[float, ...]) -> FaceChannel:
    return FaceChannel(25, 1.0, 1, 0.9, probs, GOOD)


def _words(probs: tuple[float, ...] | None) -> WordsChannel:
    return WordsChannel((), probs, GOOD if probs else "no_words")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("face", "voice", "words", "score", "pair"),
    [
        (_face(_dist("happy", 0.95)), None, _words(_dist("sad", 0.95)), 0.87, ("face", "words")),
        (_face(_dist("happy", 0.95)), None, _words(_dist("happy", 0.9)), 0.0, None),
        (_face(_dist("happy", 0.95)), None, _words(_dist("neutral", 0.95)), 0.0, None),
        (_face(_dist("sad", 0.9)), VoiceChannel(0.6, -20, -60, 0, GOOD, "acoustic", valence=0.8), None, 0.37, None),
        (_face(_dist("happy", 0.9)), None, _words(None), None, None),  # one good channel: no score
    ],
)
def test_disparity_score(
    face: FaceChannel, voice: VoiceChannel | None, words: WordsChannel, score: float | None, pair: tuple | None
) -> None:
    result = disparity(face, voice, words)
    if score is None:
        assert result is None
        return
    assert result is not None and result.score == pytest.approx(score, abs=0.02)
    if pair:
        assert result.pair == pair


@pytest.mark.unit
def test_a_scripted_disagreement_becomes_an_event_that_validates() -> None:
    """A smiling face with sad words for 6 s, then agreement: one event, published as numbers."""
    tracker = DisparityTracker(threshold=0.5, min_duration_s=5.0)
    events = []
    for k in range(12):
        words = _words(_dist("sad", 0.9)) if 2 <= k < 6 else _words(_dist("happy", 0.9))
        event = tracker.add(float(k), k + 2.5, disparity(_face(_dist("happy", 0.9)), None, words))
        events += [event] if event else []
    assert tracker.close() is None
    assert len(events) == 1
    e = events[0]
    assert (e.start_s, e.end_s, e.windows, e.pair) == (2.0, 7.5, 4, ("face", "words"))
    body = json.loads(
        p.disparity_event(
            e,
            session_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
            site="s",
            room="r",
            device_id="d",
            seq=1,
            message_id="1" * 8 + "-1111-1111-1111-" + "1" * 12,
        ).model_dump_json()
    )
    jsonschema.validate(body, json.loads(wire.EVENT_SCHEMA_PATH.read_text()))
    assert body["first"] == "face" and body["second"] == "words" and body["peak"] >= 0.5
    short = DisparityTracker(threshold=0.5, min_duration_s=5.0)
    for k in range(3):
        short.add(float(k), k + 2.5, disparity(_face(_dist("happy", 0.9)), None, _words(_dist("sad", 0.9))))
    assert short.close() is None  # 4.5 s is shorter than the 5 s a disagreement must last


def test_event_schema_file_matches_the_model() -> None:
    assert json.loads(wire.EVENT_SCHEMA_PATH.read_text()) == wire.event_json_schema()
