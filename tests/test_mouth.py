"""The mouth cue of speaker attribution: its self-calibration from the room's own voice activity
(table), and a real room in which the client's mouth moves with their speech while a second,
off-camera voice speaks with nobody enrolled: once the cue has calibrated, that voice's speech is
analysed by no channel and its words are never transcribed. The clip's face is a photograph whose
jaw `scripts/make_scene.py` moves with the client's speech; real MediaPipe face mesh, GStreamer,
ONNX Runtime, faster-whisper and SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.runtime import Appliance
from edge.speakers.mouth import MouthCue, MouthTrack
from tests.conftest import CONSENT, make_scene, write_config

HOP = 160  # voice-activity frames of 10 ms
CLIENT = (
    (1.0, "I spent the weekend in the garden with my sister, planting roses."),
    (15.0, "The garden makes me calm, I love the roses and the birds."),
    (27.0, "Yes, my sister will drive me."),
)
OFF_CAMERA = ((9.0, "Tell me about the homework we agreed on last time."), (21.0, "Shall we book Tuesday?"))
STAFF_WORDS = ("homework", "agreed", "book", "tuesday")


def _track(seconds: float, moving: bool, rng: np.random.Generator) -> MouthTrack:
    times = np.arange(0.0, seconds, 0.1)
    jitter = rng.normal(0.0, 0.002, times.shape[0])
    opening = 0.07 + jitter + (0.04 * np.abs(np.sin(times * 9.0)) if moving else 0.0)
    return MouthTrack(times, opening)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("moves_when_voiced", "moves_when_quiet", "calibrated"),
    [
        (True, False, True),  # a speaking client: the mouth moves with voice, rests in silence
        (False, False, False),  # a photograph, or a client who has not spoken: nothing to tell
        (True, True, False),  # a mouth as busy in silence (chewing, a tic): the cue cannot tell
    ],
)
def test_the_cue_calibrates_only_on_a_mouth_that_moves_with_voice(
    moves_when_voiced: bool, moves_when_quiet: bool, calibrated: bool
) -> None:
    rng = np.random.default_rng(1)
    cue = MouthCue()
    frames = 250  # a 2.5 s window
    for k in range(12):  # alternate voiced and silent windows, 1 s apart in the session
        voiced = k % 2 == 0
        moving = moves_when_voiced if voiced else moves_when_quiet
        cue.observe(_track(2.5, moving, rng), np.full(frames, voiced), HOP, float(k * 2.5))
    assert (cue.cut is not None) == calibrated
    still = _track(2.5, False, rng)
    talking = _track(2.5, True, rng)
    assert cue.still(still, 0.0, 0.8) == calibrated  # only a calibrated cue ever says "still"
    assert not cue.still(talking, 0.0, 0.8)
    assert not cue.still(None, 0.0, 0.8)
    cue.close()
    assert cue.cut is None  # forgotten with the session


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scene = make_scene()
    speech = [scene.Said(t, text, mouth=True) for t, text in CLIENT]
    speech += [scene.Said(t, text, voice="en-gb+m3") for t, text in OFF_CAMERA]
    speech.sort(key=lambda s: s.start_s)
    out = tmp_path_factory.mktemp("mouth") / "talking.mkv"
    return scene.compose(out, [scene.Shot(0.0, "astronaut")], speech, 32.0, voice="en-us+f3")


def test_an_off_camera_voice_is_not_analysed_once_the_mouth_cue_has_calibrated(
    tmp_path: Path, default_pack: Path, talking_clip: Path
) -> None:
    config = load_config(
        write_config(
            tmp_path / "room.toml",
            face_model=tmp_path / "unused.onnx",
            state_dir=tmp_path / "state",
            mqtt_port=None,
            pack=default_pack,
            extra="[channels.words]\nstore_transcript = true\n",
        )
    )
    report = Appliance(config, talking_clip.as_uri()).run(consent=CONSENT)  # nobody is enrolled
    conn = sqlite3.connect(report.database)
    windows = [(a, b, json.loads(v)) for a, b, v in conn.execute("SELECT start_s, end_s, voice FROM windows")]
    said = " ".join(t for (t,) in conn.execute("SELECT text FROM transcripts")).lower()
    conn.close()

    def inside(turns: tuple[tuple[float, str], ...], length: float) -> list[dict[str, float]]:
        return [v for a, b, v in windows if any(t <= a and b <= t + length for t, _ in turns)]

    off_camera = inside(OFF_CAMERA, 3.5)
    client = inside(CLIENT, 3.5)
    assert off_camera and all(v["unknown_share"] == 1.0 and v["staff_share"] == 0.0 for v in off_camera)
    assert client and all(v["unknown_share"] == 0.0 for v in client)
    # Its words never reach the transcript; the client's do.
    assert "garden" in said and "sister" in said
    assert not any(word in said for word in STAFF_WORDS), said
