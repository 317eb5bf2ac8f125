"""Disparity at the room's defaults, on generated clips (a photograph of a face with espeak-ng speech,
``scripts/make_scene.py``): a smiling face over about ten seconds of clearly sad words raises an
event; a smiling face with happy words, and a calm face with neutral words, raise none. The
sentences are not those ``benchmarks/disparity.py`` chose the defaults on. Real GStreamer, MediaPipe,
ONNX Runtime, faster-whisper and SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge.config import load_config
from edge.runtime import Appliance
from tests.conftest import CONSENT, make_scene, write_config

SCENES = {
    "smile-sad": (
        "astronaut",
        "My brother is very ill and I am scared and sad all the time.",
        "I feel so lonely and miserable, I just want to cry.",
    ),
    "smile-happy": (
        "astronaut",
        "We went to the seaside on Sunday and it was lovely, I really enjoyed it.",
        "I am proud of myself and so glad I went.",
    ),
    "calm-neutral": (
        "hopper",
        "I usually take the train at eight and get to work around nine.",
        "On Thursdays I go to the shop after lunch.",
    ),
}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    scene = make_scene()
    folder = tmp_path_factory.mktemp("scenes")
    return {
        name: scene.compose(
            folder / f"{name}.mkv", [scene.Shot(0.0, photo)], [(1.0, first), (7.0, second)], 16.0, voice="en-us+m3"
        )
        for name, (photo, first, second) in SCENES.items()
    }


@pytest.mark.parametrize(("scene", "wanted"), [("smile-sad", True), ("smile-happy", False), ("calm-neutral", False)])
def test_disparity_fires_at_the_defaults_and_only_then(
    tmp_path: Path, default_pack: Path, scenes: dict[str, Path], scene: str, wanted: bool
) -> None:
    config = load_config(
        write_config(
            tmp_path / "room.toml",
            face_model=tmp_path / "unused.onnx",
            state_dir=tmp_path / "state",
            mqtt_port=None,
            pack=default_pack,
        )
    )
    assert config.disparity.enabled and config.channels.words.enabled == "auto"  # the defaults
    report = Appliance(config, scenes[scene].as_uri()).run(consent=CONSENT)
    conn = sqlite3.connect(report.database)
    events = conn.execute("SELECT start_s, end_s, peak, channels FROM events").fetchall()
    words = [json.loads(w) for (w,) in conn.execute("SELECT words FROM windows WHERE words IS NOT NULL")]
    conn.close()
    assert sum(w["quality"] == "good" for w in words) >= 8  # the words reach the windows they were said in
    if wanted:
        assert events, "a smiling face over sad words is an event at the default settings"
        start, end, peak, channels = events[0]
        assert end - start >= config.disparity.min_duration_s and peak >= config.disparity.threshold
        assert "face" in json.loads(channels)
    else:
        assert events == []
