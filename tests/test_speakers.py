"""Speaker attribution: the GE2E port against Resemblyzer's own pipeline, the decision rule,
enrolment (embeddings only, 0600, removable), conversations of real and synthesised voices, and staff
speech kept out of every channel in a real appliance run."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import generate_latest

from clinic_signals.speaker import mel_filters, mel_spectrogram
from edge.channels.sessions import staff_dir
from edge.cli import main
from edge.config import load_config
from edge.config.models import AppConfig, AudioConfig, OnnxRuntimeBackendConfig, SpeakersConfig
from edge.inference.engine import create_engine
from edge.inference.manifest import load_manifest
from edge.inference.pack import select_model
from edge.runtime import Appliance
from edge.speakers.attribution import decide
from edge.speakers.encoder import SpeakerEncoder
from edge.speakers.staff import EnrolmentError, StaffVoice, StaffVoices, read_wav
from export.speaker import speak
from tests.conftest import CONSENT, PACK_KEY, ROOT, WHISPER_GGML, write_config

sys.path.insert(0, str(ROOT / "benchmarks"))
import speakers as conversations

JFK = ROOT / "tests" / "data" / "jfk.wav"
ENROL_TEXT = " ".join(conversations.ENROL)


@pytest.fixture(scope="module")
def encoder(default_pack: Path) -> SpeakerEncoder:
    path = select_model(default_pack, "speaker", "fp32")
    return SpeakerEncoder(create_engine(path, load_manifest(path), [OnnxRuntimeBackendConfig()]))


def test_the_mel_front_end_is_librosa_s() -> None:
    librosa = pytest.importorskip("librosa", reason="librosa comes with the dev extra (scripts/setup.sh)")
    reference = librosa.filters.mel(sr=16_000, n_fft=400, n_mels=40)
    assert np.abs(mel_filters() - reference).max() < 1e-6
    wav = read_wav(JFK)
    spectrum = librosa.feature.melspectrogram(y=wav, sr=16_000, n_fft=400, hop_length=160, n_mels=40).T
    ours = mel_spectrogram(wav)
    assert ours.shape == spectrum.shape
    assert np.abs(ours - spectrum).max() <= 1e-5 * np.abs(spectrum).max()


@pytest.mark.unit
def test_the_onnx_port_embeds_as_resemblyzer_does(encoder: SpeakerEncoder) -> None:
    """Resemblyzer's own VoiceEncoder (PyTorch, librosa features, webrtcvad trimming) against the
    room's pipeline (numpy features, the exported ONNX graph) on the same partials of real speech."""
    resemblyzer = pytest.importorskip("resemblyzer", reason="installed by scripts/setup.sh")
    reference = resemblyzer.VoiceEncoder("cpu", verbose=False)
    wav = resemblyzer.preprocess_wav(read_wav(JFK))
    expected, expected_partials, slices = reference.embed_utterance(wav, return_partials=True)
    padded = np.pad(wav, (0, max(0, slices[-1].stop - wav.shape[0])))
    mel = mel_spectrogram(padded.astype(np.float32))
    ours = encoder.embed_partials(np.stack([mel[s.start // 160 : s.stop // 160] for s in slices]))
    assert ours.shape == expected_partials.shape
    assert np.abs(ours - expected_partials).max() < 1e-3
    mean = ours.mean(axis=0)
    assert float(mean / np.linalg.norm(mean) @ expected) > 0.9999


DEFAULTS = SpeakersConfig()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("staff", "client", "expected"),
    [
        pytest.param(None, None, "client", id="nobody enrolled: every voice is the client's"),
        pytest.param(None, 0.5, "client", id="nobody enrolled: nobody to tell apart"),
        pytest.param(0.7, None, "unknown", id="no profile yet: never the client's"),
        pytest.param(0.85, None, "staff", id="no profile yet, like a staff voice"),
        pytest.param(0.85, 0.80, "staff", id="more like staff"),
        pytest.param(0.80, 0.80, "staff", id="a tie is staff's"),
        pytest.param(0.80, 0.85, "unknown", id="within the margin"),
        pytest.param(0.70, 0.92, "client", id="clearly the client"),
        pytest.param(0.40, 0.60, "unknown", id="unlike the client profile"),
    ],
)
def test_decision_rule(staff: float | None, client: float | None, expected: str) -> None:
    assert decide(staff, client, DEFAULTS) == expected


def _speech(voice: str, text: str) -> npt.NDArray[np.float32]:
    return speak(text, voice)


def test_enrolment_stores_an_embedding_only_and_can_be_removed(
    tmp_path: Path, encoder: SpeakerEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    voices = StaffVoices(tmp_path / "staff")
    audio = _speech("en-us+m1", ENROL_TEXT)
    voice = voices.enroll("dr.lee", "consent-2026-17", audio, encoder, AudioConfig())
    path = tmp_path / "staff" / "dr.lee.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "staff").stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert set(stored) == {
        "version", "staff_id", "consent", "enrolled_at", "speech_s", "encoder", "encoder_sha256", "embedding"
    }  # fmt: skip
    assert len(stored["embedding"]) == 256 and stored["speech_s"] >= 10
    assert voice.consent == "consent-2026-17"
    assert voices.embeddings(encoder).ids == ("dr.lee",)

    # Another encoder's enrolment is named and not compared; a foreign file is skipped.
    other = voice.model_copy(update={"staff_id": "old", "encoder_sha256": "0" * 64})
    (tmp_path / "staff" / "old.json").write_text(other.model_dump_json())
    (tmp_path / "staff" / "notes.json").write_text("{}")
    with caplog.at_level(logging.WARNING):
        assert voices.embeddings(encoder).ids == ("dr.lee",)
    assert "enrol again): old" in caplog.text and "notes.json is not a staff voice" in caplog.text

    voices.remove("dr.lee")
    assert not path.exists()
    with pytest.raises(EnrolmentError, match=r"dr.lee has no enrolled voice \(enrolled: old\)"):
        voices.remove("dr.lee")


@pytest.mark.parametrize(
    ("staff_id", "seconds_text", "message"),
    [
        pytest.param("dr.lee", "Hello, this is short.", r"s of speech in the recording; enrolment needs at least 10 s"),
        pytest.param("../etc/passwd", ENROL_TEXT, r"staff id '../etc/passwd': use letters"),
    ],
)
def test_enrolment_refuses(
    tmp_path: Path, encoder: SpeakerEncoder, staff_id: str, seconds_text: str, message: str
) -> None:
    with pytest.raises(EnrolmentError, match=message):
        StaffVoices(tmp_path).enroll(staff_id, "c-1", _speech("en-us", seconds_text), encoder, AudioConfig())
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.unit
def test_a_recording_is_read_at_16_khz_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    t = np.arange(22_050) / 22_050
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(22_050)
        f.writeframes(np.repeat(tone, 2).tobytes())
    audio = read_wav(path)
    assert audio.shape[0] == 16_000 and 0.45 < np.abs(audio).max() < 0.55
    path.write_bytes(b"RIFF....not a wave")
    with pytest.raises(EnrolmentError, match="not a WAV file"):
        read_wav(path)


@pytest.mark.parametrize(
    ("staff", "client"),
    [
        pytest.param("librivox", "jfk.wav", id="real voices: a LibriVox reader and jfk.wav"),
        pytest.param("en-us+m1", "en+f4", id="synthesised voices"),
    ],
)
def test_staff_speech_is_kept_from_the_client_s_channels(encoder: SpeakerEncoder, staff: str, client: str) -> None:
    if staff == "librivox":
        if not all(p.is_file() for p in conversations.LIBRIVOX):
            pytest.fail("pocketsphinx-testdata is missing: run scripts/setup.sh")
        reader = [conversations.read_wav(p) for p in conversations.LIBRIVOX]
        enrol, staff_turns = np.concatenate(reader[:3]), reader[3:]
    else:
        enrol = np.concatenate([speak(s, staff) for s in conversations.ENROL])
        staff_turns = [speak(s, staff) for s in conversations.STAFF_TURNS]
    if client == "jfk.wav":
        jfk = conversations.read_wav(JFK)
        third = jfk.shape[0] // 3
        client_turns = [jfk[:third], jfk[third : 2 * third], jfk[2 * third :]]
    else:
        client_turns = [speak(s, client) for s in conversations.CLIENT_TURNS]
    confusion = conversations.run_conversation(encoder, enrol, staff_turns, client_turns)
    assert confusion.rate("staff", "client") <= 0.01  # staff speech analysed: the privacy error
    # The client's first seconds found their profile (unknown until then); the rest is analysed.
    assert confusion.rate("client", "client") >= 0.3


def test_staff_voice_command(tmp_path: Path, default_pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "room.toml"
    config.write_text(
        f'[room]\nsite = "s"\nroom = "r"\ndevice_id = "d"\n[models]\npack = "{default_pack}"\n'
        f'trusted_keys = ["{PACK_KEY}"]\n'
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nenabled = false\n'
    )
    recording = tmp_path / "me.wav"
    pcm = (_speech("en-gb+f2", ENROL_TEXT) * 32767).astype(np.int16)
    with wave.open(str(recording), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16_000)
        f.writeframes(pcm.tobytes())
    base = ["staff-voice"]
    args = ["--config", str(config)]
    assert main([*base, "enroll", *args, "--staff-id", "t01", "--audio", str(recording), "--consent", "hr-77"]) == 0
    assert "enrolled t01" in capsys.readouterr().out
    stored = tmp_path / "state" / "staff-voices" / "t01.json"
    assert StaffVoice.model_validate_json(stored.read_text()).consent == "hr-77"
    assert main([*base, "list", *args]) == 0
    assert "t01\tenrolled" in capsys.readouterr().out
    assert main([*base, "remove", *args, "--staff-id", "t01"]) == 0
    assert not stored.exists()
    assert main([*base, "remove", *args, "--staff-id", "t01"]) == 2
    assert (
        main([*base, "enroll", *args, "--staff-id", "t02", "--audio", str(tmp_path / "no.wav"), "--consent", "x"]) == 2
    )


def attributed_enrolled(voices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in voices if v["staff_share"] is not None]


def _room(tmp_path: Path, name: str, pack: Path, face_model: Path) -> AppConfig:
    return load_config(
        write_config(
            tmp_path / f"{name}.toml",
            face_model=face_model,
            state_dir=tmp_path / name,
            mqtt_port=None,
            pack=pack,
            extra=f'[channels.words]\nenabled = true\nmodel = "{WHISPER_GGML}"\nstore_transcript = true\n',
        )
    )


def test_an_enrolled_voice_is_never_analysed_in_a_real_room(
    tmp_path: Path, default_pack: Path, face_model: Path, demo_clip: Path, encoder: SpeakerEncoder
) -> None:
    """The demo clip's speaker (espeak-ng's en-us voice) is enrolled as staff, from other sentences:
    the room transcribes nothing, has no voice estimate, and counts the speech as staff's. The same
    clip in a room where nobody is enrolled is analysed as the client's (the control)."""
    enrolled = _room(tmp_path, "enrolled", default_pack, face_model)
    speech = speak(ENROL_TEXT, "en-us", speed=150)  # the demo's voice and pace, other sentences
    StaffVoices(staff_dir(enrolled)).enroll("dr.demo", "hr-1", speech, encoder, AudioConfig())
    control = _room(tmp_path, "control", default_pack, face_model)
    runs = {}
    for name, config in (("enrolled", enrolled), ("control", control)):
        appliance = Appliance(config, demo_clip.as_uri())
        report = appliance.run(consent=CONSENT)
        metrics = generate_latest(appliance.metrics.registry).decode()
        conn = sqlite3.connect(report.database)
        voices = [json.loads(v) for (v,) in conn.execute("SELECT voice FROM windows ORDER BY idx")]
        transcripts = conn.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]
        conn.close()
        runs[name] = (report, voices, transcripts, metrics)

    _, voices, transcripts, _ = runs["control"]
    assert transcripts > 0
    assert any(v["arousal"] is not None for v in voices)
    attributed = [v["staff_share"] for v in voices if v["staff_share"] is not None]  # silent windows: None
    assert attributed and all(share == 0.0 for share in attributed)

    report, voices, transcripts, metrics = runs["enrolled"]
    assert report.windows == 13
    assert transcripts == 0  # staff speech never reaches speech-to-text
    spoken = [v for v in voices if v["staff_share"] is not None and v["staff_share"] + v["unknown_share"] > 0]
    assert spoken, "the clip's speech was attributed"
    assert max(v["staff_share"] for v in spoken) > 0.5
    assert all(v["arousal"] is None and v["valence"] is None and v["cues"] is None for v in voices)
    assert all(v["voiced_ratio"] < 0.1 for v in voices)  # what remains as the client's is next to nothing
    assert "speech_share" not in metrics and "speaker=" not in metrics  # who spoke how much is no metric
