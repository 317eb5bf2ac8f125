"""The windows' voice activity at the defaults (Silero VAD): tones, music, typing and doors are not
speech, speech under them still is; and a tone through the whole room gives no voiced window and
no words. The sounds are generated (``tests/sounds.py``); the speech is the public-domain jfk.wav."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinic_signals.audio import LogMel
from edge.audio.vad import SpeechStream, voice_activity
from edge.config.models import AudioConfig
from edge.speakers.staff import read_wav
from tests.conftest import ROOT
from tests.sounds import NOT_SPEECH, RATE, sounds, under

WINDOW = int(2.5 * RATE)
JFK = ROOT / "tests" / "data" / "jfk.wav"


def _voiced(signal: np.ndarray, config: AudioConfig) -> list[bool]:  # type: ignore[type-arg]
    """Whether each 2.5 s window (every 1 s) is voiced, as a room's session sees them: one stream."""
    logmel = LogMel(n_mels=config.n_mels)
    stream = SpeechStream(config.vad_threshold) if config.vad == "silero" else None
    return [
        voice_activity(signal[s : s + WINDOW], logmel, config, stream, s).voiced_ratio >= config.min_voiced_ratio
        for s in range(0, signal.size - WINDOW + 1, RATE)
    ]


@pytest.fixture(scope="module")
def generated() -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    return sounds(np.random.default_rng(7))


@pytest.mark.unit
@pytest.mark.parametrize("name", NOT_SPEECH)
def test_sound_that_is_not_speech_is_not_voiced_at_the_defaults(generated: dict[str, np.ndarray], name: str) -> None:  # type: ignore[type-arg]
    defaults = AudioConfig()
    assert defaults.vad == "silero"
    assert not any(_voiced(generated[name], defaults)), f"{name}: a window taken for a voice"


@pytest.mark.unit
@pytest.mark.parametrize("name", ["warbling tone in bursts over pink noise", "keyboard-like bursts"])
def test_the_energy_rule_took_them_for_voice(generated: dict[str, np.ndarray], name: str) -> None:  # type: ignore[type-arg]
    """What the learned detector replaces: the speech-band energy rule hears these as voice."""
    assert any(_voiced(generated[name], AudioConfig(vad="energy")))


@pytest.mark.unit
@pytest.mark.parametrize("name", [*NOT_SPEECH, "pink noise + 220 Hz hum", "white noise"])
def test_speech_under_the_same_sound_is_still_voiced(generated: dict[str, np.ndarray], name: str) -> None:  # type: ignore[type-arg]
    speech = read_wav(JFK)
    clean = _voiced(speech, AudioConfig())
    noisy = _voiced(under(speech, generated[name], 10.0), AudioConfig())
    assert sum(clean) >= len(clean) - 1, "jfk.wav is speech from start to end"
    assert sum(noisy) >= sum(clean) - 1, f"{name}: speech at 10 dB SNR lost more than one window"


def test_a_tone_through_the_room_gives_no_voiced_window_and_no_words(
    tmp_path: Path,
    default_pack: Path,
    generated: dict[str, np.ndarray],  # type: ignore[type-arg]
) -> None:
    """The scene of the issue: a still face, nobody speaking, a warbling tone in bursts, at the room's
    defaults (every channel, streaming words); nothing voiced, no transcript row."""
    import sqlite3

    from edge.config import load_config
    from edge.runtime import Appliance
    from tests.conftest import CONSENT, make_scene, write_config

    scene = make_scene()
    tone = generated["warbling tone in bursts over pink noise"][: 20 * RATE]
    clip = scene.compose(tmp_path / "tone.mkv", [scene.Shot(0.0, "astronaut")], [], 20.0, background=tone)
    config = load_config(
        write_config(
            tmp_path / "room.toml",
            face_model=Path(),
            state_dir=tmp_path / "state",
            mqtt_port=None,
            pack=default_pack,
            extra="[channels.words]\nstore_transcript = true\n",
        )
    )
    report = Appliance(config, clip.as_uri()).run(consent=CONSENT)
    db = sqlite3.connect(config.storage.state_dir / config.storage.database)
    try:
        flags = [f for (f,) in db.execute("SELECT flags FROM windows WHERE session_id = ?", [report.session_id])]
        words = db.execute("SELECT COUNT(*) FROM transcripts WHERE session_id = ?", [report.session_id]).fetchone()[0]
    finally:
        db.close()
    assert len(flags) >= 15 and all("silence" in f for f in flags), "no window of the tone is voiced"
    assert words == 0, "no words from a tone"


JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.mark.parametrize("name", ["warbling tone in bursts over pink noise", "music-like arpeggio"])
def test_speech_under_a_tone_or_music_is_transcribed_within_one_word_of_the_clean_file(
    generated: dict[str, np.ndarray],  # type: ignore[type-arg]
    name: str,
) -> None:
    """jfk.wav at 10 dB SNR above the sound, handed to the room's streaming words a second at a time
    with the room's own voice activity (Silero VAD, one stream per session) saying what is voiced."""
    from edge.transcribe import create_transcriber
    from edge.transcribe.stream import StreamingTranscriber
    from edge.transcribe.wer import word_error_rate
    from export.whisper_ggml import packaged_model_dir

    transcriber = create_transcriber("faster-whisper", packaged_model_dir())
    speech = read_wav(JFK)
    clean = word_error_rate(JFK_TEXT, transcriber.transcribe(speech).text)
    noise = generated[name]
    audio = under(np.concatenate([np.zeros(RATE, np.float32), speech, np.zeros(3 * RATE, np.float32)]), noise, 10.0)
    config = AudioConfig()
    logmel, vad = LogMel(n_mels=config.n_mels), SpeechStream(config.vad_threshold)
    stream, closed = StreamingTranscriber(transcriber), []
    for start in range(0, audio.size, RATE):
        chunk = audio[start : start + RATE]
        voiced = voice_activity(chunk, logmel, config, vad, start).voiced_ratio > 0
        closed += stream.feed(chunk, start / RATE, voiced=voiced)
    closed += stream.finish()
    text = " ".join(u.text for u in closed)
    assert word_error_rate(JFK_TEXT, text) <= clean + 1 / 22 + 1e-9, f"{name}: {text!r}"


@pytest.mark.unit
def test_the_stream_judges_each_chunk_once_as_one_recording_would() -> None:
    """Overlapping windows fed one after another give the probabilities of the whole recording fed
    at once; a gap (a capture that reconnected) starts afresh."""
    speech = read_wav(JFK)
    whole = SpeechStream(0.5)
    whole.feed(speech, 0)
    streamed = SpeechStream(0.5)
    for s in range(0, speech.size - WINDOW + 1, RATE):
        streamed.feed(speech[s : s + WINDOW], s)
    first, on = streamed.speech()
    first_whole, on_whole = whole.speech()
    assert first == first_whole == 0
    assert np.array_equal(on, on_whole[: on.size]) and on.any()
    gap = SpeechStream(0.5)
    gap.feed(speech[:WINDOW], 0)
    gap.feed(speech[5 * RATE : 5 * RATE + WINDOW], 5 * RATE)
    assert gap.speech()[0] == -(-(5 * RATE) // 512), "after a gap the stream begins again at the new audio"
