"""The published summary: schema v1, generated from the models, with no room for media."""

from __future__ import annotations

import json
import typing
import uuid
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from edge.analysis.results import QUALITY_FLAGS, FaceChannel, VoiceChannel, WindowResult
from edge.labels import CLASSES
from edge.publish import payload as p

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
        face=FaceChannel(25, 1.0 if probs else 0.0, 1, 0.9, probs),
        voice=VoiceChannel(0.4, -28.0, -60.0, 0.0),
        flags=flags,
    )


HAPPY = (0.05, 0.0, 0.8, 0.05, 0.05, 0.025, 0.0, 0.025)
SAD = (0.1, 0.0, 0.0, 0.7, 0.1, 0.05, 0.05, 0.0)


def _schema() -> dict[str, Any]:
    return json.loads(p.SCHEMA_PATH.read_text(encoding="utf-8"))


def test_schema_file_matches_the_models() -> None:
    assert _schema() == p.json_schema(), "run `python -m edge.publish.write_schema` to regenerate the schema"


def test_literals_match_the_runtime_constants() -> None:
    assert set(typing.get_args(p.Flag)) == set(QUALITY_FLAGS)
    assert typing.get_args(p.Label) == CLASSES
    assert tuple(p.Probabilities.model_fields) == CLASSES


def _walk(node: Any) -> typing.Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


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
    assert body["schema_version"] == 1
    assert body["emotion"]["label"] == label
    assert body["span"]["windows"] == windows
    assert body["quality"] == quality
    if body["emotion"]["probs"]:
        assert sum(body["emotion"]["probs"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "mutation",
    [
        {"frame": [[0, 0, 0]]},
        {"emotion": {"label": "happy", "confidence": 0.9, "probs": None, "landmarks": [1, 2]}},
        {"schema_version": 2},
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
        p.Summary.model_validate(body)
