"""The published summary: schema v2, generated from the models, with no room for media or words."""

from __future__ import annotations

import json
import typing
import uuid
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from contract import payload as wire
from contract.classes import CLASSES
from edge import results
from edge.publish import payload as p
from edge.results import (
    FaceChannel,
    PulseChannel,
    UtteranceSpan,
    VoiceChannel,
    WindowResult,
    WordsChannel,
)

SESSION = str(uuid.uuid4())


def _result(index: int, probs: tuple[float, ...] | None, flags: tuple[str, ...] = ()) -> WindowResult:
    return WindowResult(
        session_id=SESSION,
        index=index,
        start_s=float(index),
        end_s=index + 2.5,
        started_at="2026-01-01T10:00:00.000+00:00",
        probs=probs,
        label=None if probs is None else CLASSES[max(range(8), key=lambda i: probs[i])],
        confidence=None if probs is None else max(probs),
        channels={
            "face": FaceChannel(25, 1.0 if probs else 0.0, 1, 0.9, probs),
            "voice": VoiceChannel(0.4, -28.0, -60.0, 0.0),
        },
        flags=flags,
    )


HAPPY = (0.05, 0.0, 0.8, 0.05, 0.05, 0.025, 0.0, 0.025)
SAD = (0.1, 0.0, 0.0, 0.7, 0.1, 0.05, 0.05, 0.0)


def _schema() -> dict[str, Any]:
    return json.loads(wire.SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.mark.unit
def test_schema_file_matches_the_models() -> None:
    assert _schema() == wire.json_schema(), "run `python -m contract.write_schema` to regenerate the schema"


@pytest.mark.unit
def test_literals_match_the_runtime_constants() -> None:
    assert set(wire.FLAGS) == {v for k, v in vars(results).items() if k.startswith("FLAG_")}
    assert typing.get_args(wire.Label) == CLASSES
    assert tuple(wire.Probabilities.model_fields) == CLASSES


def _walk(node: Any) -> typing.Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.unit
def test_schema_has_no_place_for_media() -> None:
    """No arrays, no open objects, bounded strings: pixels, samples, landmarks or words cannot fit."""
    schema = _schema()
    for node in _walk(schema):
        assert node.get("type") != "array", node
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, node
        if node.get("type") == "string":
            assert "maxLength" in node or "pattern" in node or "enum" in node or "const" in node, node
    text = json.dumps(schema).lower()
    for word in (
        "pixel",
        "frame_data",
        "sample",
        "crop",
        "landmark",
        "transcript",
        "text",
        "image",
        "audio_data",
    ):
        assert word not in text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("results", "label", "windows", "quality"),
    [
        ([_result(0, HAPPY)], "happy", 1, {}),
        ([_result(0, None, ("no_face",))], None, 1, {"no_face": 1}),
        ([_result(0, HAPPY), _result(1, HAPPY), _result(2, SAD, ("silence",))], "happy", 3, {"silence": 1}),
        (
            [_result(0, None, ("no_face",)), _result(1, SAD, ("no_face", "low_light"))],
            "sad",
            2,
            {"no_face": 2, "low_light": 1},
        ),
    ],
)
def test_summaries_validate_against_the_schema(
    results: list[WindowResult], label: str | None, windows: int, quality: dict[str, int]
) -> None:
    ids = {"site": "s", "room": "r", "device_id": "d", "seq": 7, "message_id": str(uuid.uuid4())}
    summary = p.window_summary(results[0], **ids) if len(results) == 1 else p.interval_summary(results, **ids)
    body = json.loads(summary.model_dump_json())
    jsonschema.validate(body, _schema())
    assert body["schema_version"] == 3
    assert body["emotion"]["label"] == label
    assert body["span"]["windows"] == windows
    assert body["quality"] == quality
    if body["emotion"]["probs"]:
        assert sum(body["emotion"]["probs"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.unit
@pytest.mark.parametrize(
    "mutation",
    [
        {"frame": [[0, 0, 0]]},
        {"emotion": {"label": "happy", "confidence": 0.9, "probs": None, "landmarks": [1, 2]}},
        {"schema_version": 4},
        {
            "modalities": {
                "face": None,
                "voice": None,
                "words": {"quality": "good", "words": 3, "utterances": 1, "probs": None, "text": "I am fine"},
            }
        },
        {"seq": 0},
        {"quality": {"blurry": 1}},
    ],
)
def test_payloads_with_extra_or_wrong_fields_are_rejected(mutation: dict[str, Any]) -> None:
    ids = {"site": "s", "room": "r", "device_id": "d", "seq": 1, "message_id": str(uuid.uuid4())}
    body = json.loads(p.window_summary(_result(0, HAPPY), **ids).model_dump_json())
    body.update(mutation)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, _schema())
    with pytest.raises(ValidationError):
        wire.Summary.model_validate(body)


@pytest.mark.unit
def test_a_version_1_message_is_still_accepted() -> None:
    """Rooms not yet upgraded keep publishing v1; the hub reads them with the same model."""
    ids = {"site": "s", "room": "r", "device_id": "d", "seq": 1, "message_id": str(uuid.uuid4())}
    body = json.loads(p.window_summary(_result(0, HAPPY), **ids).model_dump_json())
    body["schema_version"] = 1
    del body["emotion"]["fused"]
    body["modalities"] = {"face": {"coverage": 1.0, "max_faces": 1, "probs": None}, "voice": None}
    summary = wire.Summary.model_validate(body)
    assert summary.schema_version == 1 and summary.modalities.words is None


@pytest.mark.unit
@pytest.mark.parametrize("version", [1, 2])
def test_earlier_versions_are_read_without_speaker_shares(version: int) -> None:
    """A v2 room's voice has no staff_share; a v3 room's has one."""
    ids = {"site": "s", "room": "r", "device_id": "d", "seq": 1, "message_id": str(uuid.uuid4())}
    body = json.loads(p.window_summary(_result(0, HAPPY), **ids).model_dump_json())
    body["schema_version"] = version
    body["modalities"]["voice"] = {"voiced_ratio": 0.4, "level_dbfs": -30.0}
    assert wire.Summary.model_validate(body).modalities.voice.staff_share is None  # type: ignore[union-attr]
    body["schema_version"] = 3
    body["modalities"]["voice"]["staff_share"] = 0.25
    jsonschema.validate(body, _schema())
    assert wire.Summary.model_validate(body).modalities.voice.staff_share == 0.25  # type: ignore[union-attr]
    body["modalities"]["voice"]["staff_share"] = 1.5
    with pytest.raises(ValidationError, match="staff_share"):
        wire.Summary.model_validate(body)


def _channels(index: int, *, words: tuple[UtteranceSpan, ...], bpm: float | None) -> WindowResult:
    base = _result(index, HAPPY)
    return WindowResult(
        **{
            **{f: getattr(base, f) for f in ("session_id", "index", "start_s", "end_s", "started_at", "flags")},
            "probs": SAD,
            "label": "sad",
            "confidence": 0.7,
            "channels": {
                "face": FaceChannel(25, 1.0, 1, 0.9, HAPPY, "small_face"),
                "voice": VoiceChannel(0.6, -25.0, -60.0, 0.0, "good", "acoustic", None, 0.5, -0.25, 0.8),
                "words": WordsChannel(words, SAD if words else None, "good" if words else "no_words"),
                "pulse": PulseChannel(bpm, 9.0 if bpm else -1.0, 0.9, 1.0, 10.0, "good" if bpm else "low_snr"),
            },
            "fused": ("words",),
        }
    )


@pytest.mark.unit
def test_channels_are_summarised_as_numbers_and_shared_utterances_counted_once() -> None:
    spoken = (UtteranceSpan(1.0, 3.5, 6),)
    results = [
        _channels(0, words=spoken, bpm=70.0),
        _channels(1, words=(*spoken, UtteranceSpan(3.8, 4.6, 2)), bpm=74.0),
        _channels(2, words=(), bpm=None),
    ]
    ids = {"site": "s", "room": "r", "device_id": "d", "seq": 3, "message_id": str(uuid.uuid4())}
    one = json.loads(p.window_summary(results[0], **ids).model_dump_json())
    jsonschema.validate(one, _schema())
    assert one["emotion"]["fused"] == {"face": False, "voice": False, "words": True}
    assert one["modalities"]["face"]["quality"] == "small_face"
    assert one["modalities"]["voice"] | {"probs": None} == {
        "voiced_ratio": 0.6,
        "level_dbfs": -25.0,
        "quality": "good",
        "method": "acoustic",
        "probs": None,
        "arousal": 0.5,
        "valence": -0.25,
        "staff_share": None,  # speech not attributed in this result
        "unknown_share": None,
    }
    assert one["modalities"]["words"]["words"] == 6 and one["modalities"]["pulse"]["bpm"] == 70.0
    interval = json.loads(p.interval_summary(results, **ids).model_dump_json())
    jsonschema.validate(interval, _schema())
    assert interval["modalities"]["words"]["words"] == 8
    assert interval["modalities"]["words"]["utterances"] == 2
    assert interval["modalities"]["pulse"] == {"quality": "good", "bpm": 72.0, "snr_db": 9.0}
    last = json.loads(p.window_summary(results[2], **ids).model_dump_json())
    assert last["modalities"]["pulse"] == {"quality": "low_snr", "bpm": None, "snr_db": -1.0}
    assert last["modalities"]["words"] == {"quality": "no_words", "words": 0, "utterances": 0, "probs": None}
