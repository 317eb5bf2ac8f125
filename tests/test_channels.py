"""The voice, words and pulse channels in the room's windows: per-room switches, each channel's
quality and latency, transcripts kept in memory unless the room stores them, and late fusion of
the channels that are present and good. Real whisper.cpp / faster-whisper, ONNX Runtime, MediaPipe,
GStreamer, SQLite and mosquitto."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from clinic_signals.fusion import ChannelVote, LateFusion, WindowFusion
from contract.payload import EVENT_SCHEMA_PATH
from edge.analysis.summarize import SessionChannels, SessionTail, WindowSummarizer
from edge.channels.load import ChannelModels
from edge.channels.pulse import PulseTracker
from edge.channels.voice import VoiceAnalyzer, VoiceSession
from edge.config import load_config
from edge.config.models import AudioConfig, FusionConfig, VisionConfig, WordsChannelConfig
from edge.errors import ConfigError, ModelError
from edge.results import FrameAnalysis, WindowInput, WindowResult
from edge.runtime import Appliance
from edge.transcribe.wer import word_error_rate
from export.data.inputs import read_wav
from tests.conftest import CONSENT, WHISPER_GGML, Broker, Collector, sign_pack, write_config

RATE = 16_000
EVENT_SCHEMA = json.loads(EVENT_SCHEMA_PATH.read_text(encoding="utf-8"))
JFK = Path(__file__).parent / "data" / "jfk.wav"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
HAPPY = (0.05, 0.0, 0.8, 0.05, 0.05, 0.025, 0.0, 0.025)
SAD = (0.1, 0.0, 0.0, 0.7, 0.1, 0.05, 0.05, 0.0)
# Words of the demo clip's speech (scripts/make_demo.py) that must never leave memory unless stored.
SPOKEN = ("sister", "walk", "laughed", "feeling")


def _windows(audio: np.ndarray, *, length_s: float = 2.5, hop_s: float = 1.0) -> list[WindowInput]:
    """Cut ``audio`` into overlapping windows as the windower does (no video)."""
    out = []
    k = 0
    while (k * hop_s + length_s) * RATE <= audio.shape[0]:
        a, b = round(k * hop_s * RATE), round((k * hop_s + length_s) * RATE)
        out.append(WindowInput(k, 0.0, 0.0, k * hop_s, k * hop_s + length_s, (), audio[a:b], RATE, False, True, 0.0))
        k += 1
    return out


@pytest.mark.unit
@pytest.mark.parametrize(
    ("channels", "expected", "used"),
    [
        ([("face", HAPPY, "good"), ("voice", None, "good"), ("words", SAD, "good")], (HAPPY, SAD), ("face", "words")),
        ([("face", HAPPY, "small_face"), ("voice", SAD, "good"), ("words", None, "no_words")], (SAD,), ("voice",)),
        ([("face", None, "no_face"), ("voice", None, "silence"), ("words", None, "no_words")], (), ()),
    ],
)
def test_late_fusion_takes_only_present_and_good_channels(
    channels: list[tuple[str, tuple[float, ...] | None, str]], expected: tuple[tuple[float, ...], ...], used: tuple
) -> None:
    result = WindowFusion(LateFusion({}), FusionConfig())([ChannelVote(*c) for c in channels])
    probs, fused = result.probs, result.used
    assert fused == used
    if not expected:
        assert probs is None
    else:
        assert probs is not None
        assert np.allclose(probs, np.mean(expected, axis=0), atol=1e-4)


@pytest.mark.unit
def test_acoustic_voice_needs_a_baseline_before_it_is_good() -> None:
    speech = read_wav(JFK)
    voice = VoiceAnalyzer(AudioConfig(), speech=None)
    summarizer = WindowSummarizer(
        "s",
        datetime.now(timezone.utc),
        VisionConfig(),
        AudioConfig(),
        SessionChannels({"voice": VoiceSession(AudioConfig(), voice)}),
    )
    results = [r for w in _windows(speech) for r in summarizer.summarize(w)]
    voiced = [r.voice for r in results if r.voice is not None and r.voice.quality != "silence"]
    assert voiced[0].quality == "settling"  # the speaker's own baseline comes first
    assert any(v.quality == "good" for v in voiced)
    assert {v.method for v in voiced} == {"acoustic"}
    assert voiced[0].arousal is None and voiced[0].valence is None  # no baseline to compare with yet
    settled = [v for v in voiced if v.quality == "good"]
    assert all(v.arousal is not None and -1 <= v.arousal <= 1 for v in settled)
    # Settled cues vote with the classes near their place in the affect space, never enough alone
    # for a label.
    assert all(v.probs is not None and max(v.probs) < 1 / 3 for v in settled)
    assert all(v.cues is not None and 60 < 100 * 2 ** (v.cues.pitch_st / 12) < 400 for v in voiced)
    assert all("voice_cues_ms" in r.timing_ms for r in results)
    assert all(r.fused == ("voice",) for r in results if r.voice is not None and r.voice.quality == "good")
    assert all(r.label is None and r.valence is not None for r in results if r.fused)


@pytest.fixture(scope="module")
def words_models(tmp_path_factory: pytest.TempPathFactory, default_pack: Path) -> ChannelModels:
    folder = tmp_path_factory.mktemp("words")
    config = load_config(
        write_config(
            folder / "room.toml",
            face_model=Path("unused.onnx"),
            state_dir=folder / "state",
            mqtt_port=None,
            pack=default_pack,
            extra=f'[channels.words]\nenabled = true\nmodel = "{WHISPER_GGML}"\n',
        )
    )
    models = ChannelModels.load(config)
    yield models
    models.close()


def _run(summarizer: WindowSummarizer, windows: list[WindowInput]) -> tuple[list[WindowResult], SessionTail]:
    """Every window through the summariser, with those completed at the session's end."""
    results = [r for w in windows for r in summarizer.summarize(w)]
    tail = summarizer.finish()
    summarizer.close()
    return results + tail.windows, tail


def _without_client_speech(result: WindowResult) -> bool:
    """Silent, or every voiced moment staff's or nobody's (edge.analysis.summarize.speechless)."""
    voice = result.voice
    shares = 0.0 if voice is None else (voice.staff_share or 0.0) + (voice.unknown_share or 0.0)
    return "silence" in result.flags or "no_audio" in result.flags or shares >= 0.999


def _spoken_jfk() -> np.ndarray:
    """jfk.wav 1 s into the session, 3 s of quiet after it."""
    speech = read_wav(JFK)
    return np.concatenate([np.zeros(RATE, dtype=np.float32), speech, np.zeros(3 * RATE, dtype=np.float32)])


def test_words_land_on_the_windows_they_were_spoken_in(words_models: ChannelModels) -> None:
    audio = _spoken_jfk()
    windows = _windows(audio)
    channels = words_models.session()
    summarizer = WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels)
    results, tail = _run(summarizer, windows)
    assert sorted(r.index for r in results) == [w.index for w in windows]  # every window, once
    spoken = [r.index for r in results if not _without_client_speech(r)]
    assert spoken == sorted(spoken), "windows with speech complete in order"
    utterances = [u for r in results for u in r.transcript] + tail.utterances
    text = " ".join(u.text for u in utterances)
    # Streaming stays within one error of the same audio transcribed whole.
    assert words_models.transcriber is not None
    whole = words_models.transcriber.transcribe(read_wav(JFK)).text
    assert word_error_rate(JFK_TEXT, text) <= word_error_rate(JFK_TEXT, whole) + 1 / 22 + 1e-9, (text, whole)
    assert all(len(u.word_times) == u.word_count and len(u.probs) == 8 and u.importance for u in utterances)
    times = [t for u in utterances for t in u.word_times]
    assert times == sorted(times) and times[0][0] >= 0.9 and times[-1][1] <= 1.0 + 11.1 + 0.5
    # Each window carries the words whose middle lies in it, not only the window where speech ended.
    for r in results:
        assert r.words is not None
        inside = sum(1 for a, b in times if r.start_s <= (a + b) / 2 < r.end_s)
        assert r.words.words == inside, (r.start_s, r.words)
        assert (r.words.quality == "good") == (inside > 0) and (("words" in r.fused) == (inside > 0))
        assert r.words.quality != "late"  # a file is analysed waiting for its words
    spoken = [r for r in results if r.end_s <= 12.0 and r.start_s >= 1.0]
    assert spoken and all(r.words is not None and r.words.quality == "good" for r in spoken)
    assert results[-1].words is not None and results[-1].words.quality == "no_words"  # the quiet end
    timed = [r for r in results if r.transcript]
    assert timed and all("transcribe_ms" in r.timing_ms and "text_ms" in r.timing_ms for r in timed)
    # The stream was told where the voice ended (the voice-activity frames), so it knows quiet after
    # a closed sentence from speech.
    assert channels.words is not None
    heard_until = channels.words.stream.voiced_until
    assert heard_until is not None and 11.0 < heard_until <= 1.0 + 11.1 + 0.3, heard_until


@pytest.mark.unit
def test_pulse_of_an_unevenly_sampled_skin_record() -> None:
    """72 bpm in the skin colour, frames at about 10 fps with jitter and a few missing faces."""
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.08, 0.12, 130))
    base = np.array([180.0, 130.0, 110.0])
    frames = []
    for i, t in enumerate(times):
        gain = 1 + 0.01 * np.sin(2 * np.pi * 72 / 60 * t) * np.array([0.33, 0.77, 0.53])
        skin = None if i % 17 == 5 else tuple(float(v) for v in base * gain + rng.normal(0, 0.05, 3))
        frames.append(FrameAnalysis(float(t), 1, 90.0, 0.9, None, 120.0, 1.0, 1.0, skin_rgb=skin))
    tracker = PulseTracker(window_s=10.0, min_snr_db=3.0)
    tracker.add(tuple(frames[:40]), origin_s=0.0)
    assert tracker.estimate().quality == "too_short"
    tracker.add(tuple(frames), origin_s=0.0)  # overlapping windows hand over the same frames again
    pulse = tracker.estimate()
    assert pulse.quality == "good" and pulse.bpm is not None
    assert abs(pulse.bpm - 72) <= 3
    tracker.add(tuple(FrameAnalysis(f.pts_s, 0, 0.0, 0.0, None, 120.0, 1.0, 1.0) for f in frames), origin_s=5.0)
    gone = tracker.estimate()  # a new capture segment: the record starts again, with no face in it
    assert gone.bpm is None and gone.quality in {"no_face", "too_short"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[channels.words]\nbackend = "whisper.cpp"\n', "whisper.cpp needs a ggml model file"),
        ('[channels.words]\nenabled = "sometimes"\n', "enabled"),
        ('[channels.words]\nenabled = true\nmodel = "x.bin"\n', "channels.words needs models.pack"),
        ("[channels.pulse]\nwindow_s = 2\n", "window_s"),
        ('[channels.voice]\nspeech_model = "always"\n', "speech_model"),
        ("[channels]\nsmell = true\n", "smell"),
    ],
)
def test_channel_settings_are_checked_at_start(tmp_path: Path, extra: str, message: str) -> None:
    path = write_config(
        tmp_path / "room.toml", face_model=tmp_path / "m.onnx", state_dir=tmp_path, mqtt_port=None, extra=extra
    )
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def _pack_without_text(default_pack: Path, folder: Path) -> Path:
    """A copy of the default pack without its text model."""
    pack = folder / "pack"
    shutil.copytree(default_pack, pack)
    index = json.loads((pack / "pack.json").read_text())
    for name, entry in list(index["models"].items()):
        if entry["role"] == "text":
            del index["models"][name]
            shutil.rmtree(pack / name)
    (pack / "pack.json").write_text(json.dumps(index, indent=2))
    return sign_pack(pack)  # as whoever rebuilds a pack signs it again


@pytest.mark.unit
def test_words_are_on_by_default_where_the_models_are(
    tmp_path: Path, default_pack: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The defaults run the words channel (faster-whisper with the packaged Whisper tiny.en, the pack's
    text model); a pack without a text model turns it off with the reason in the log, unless the room
    requires it."""
    config = load_config(
        write_config(
            tmp_path / "room.toml",
            face_model=tmp_path / "m.onnx",
            state_dir=tmp_path,
            mqtt_port=None,
            pack=default_pack,
        )
    )
    assert config.channels.words.enabled == "auto" and config.channels.words.engine == "faster-whisper"
    models = ChannelModels.load(config)
    try:
        assert models.transcriber is not None and models.transcriber.name == "faster-whisper"
        assert models.text is not None
        assert models.session().words is not None
    finally:
        models.close()

    pack = _pack_without_text(default_pack, tmp_path)
    bare = load_config(
        write_config(
            tmp_path / "bare.toml", face_model=tmp_path / "m.onnx", state_dir=tmp_path, mqtt_port=None, pack=pack
        )
    )
    with caplog.at_level(logging.WARNING, logger="edge.channels.load"):
        models = ChannelModels.load(bare)
    try:
        assert models.transcriber is None and models.session().words is None
    finally:
        models.close()
    assert any("words channel is off" in r.message and "no text model" in r.message for r in caplog.records)
    required = bare.model_copy(
        update={"channels": bare.channels.model_copy(update={"words": WordsChannelConfig(enabled=True)})}
    )
    with pytest.raises(ModelError, match="text"):
        ChannelModels.load(required)


@pytest.mark.unit
def test_a_missing_speech_to_text_model_is_named_at_start(tmp_path: Path, default_pack: Path) -> None:
    config = load_config(
        write_config(
            tmp_path / "room.toml",
            face_model=tmp_path / "m.onnx",
            state_dir=tmp_path / "state",
            mqtt_port=None,
            pack=default_pack,
            extra=f'[channels.words]\nenabled = true\nmodel = "{tmp_path / "missing.bin"}"\n',
        )
    )
    with pytest.raises(ModelError, match=r"missing\.bin.*clinic-export whisper-ggml"):
        Appliance(config, "test:")


def _words_config(tmp_path: Path, pack: Path, port: int, *, backend: str, store: bool) -> Path:
    model = f'model = "{WHISPER_GGML}"\n' if backend == "whisper.cpp" else ""
    return write_config(
        tmp_path / "room.toml",
        face_model=tmp_path / "unused.onnx",
        state_dir=tmp_path / "state",
        mqtt_port=port,
        pack=pack,
        extra=(
            f'[channels.words]\nenabled = true\nbackend = "{backend}"\n{model}'
            f"store_transcript = {str(store).lower()}\n"
            # Lower than the defaults: the clip's voice and words turn negative under the smile for
            # about three seconds, which must make an event.
            '[disparity]\nthreshold = 0.3\nmin_duration_s = 2.0\n[explain]\nwhen = "every"\n'
        ),
    )


@pytest.mark.parametrize(("backend", "store"), [("whisper.cpp", False), ("faster-whisper", True)])
def test_room_with_words_keeps_the_transcript_only_where_configured(
    tmp_path: Path, default_pack: Path, demo_clip: Path, broker: Broker, collector: Collector, backend: str, store: bool
) -> None:
    config = load_config(_words_config(tmp_path, default_pack, broker.port, backend=backend, store=store))
    report = Appliance(config, demo_clip.as_uri()).run(consent=CONSENT)
    summaries = collector.wait_for("summary", report.windows)
    assert len(summaries) == report.windows == 13

    words = [s["modalities"]["words"] for s in summaries]
    spoken = [w for w in words if w["quality"] == "good"]
    assert spoken and all(w["words"] > 0 and w["probs"] is not None for w in spoken)
    assert any(s["emotion"]["fused"]["words"] for s in summaries)

    # The moment the voice and words disagree with the smiling face is an event, stored and published.
    events = collector.json("event")
    assert events, "a disparity event was published"
    for body in events:
        jsonschema.validate(body, EVENT_SCHEMA)
        assert body["session_id"] == report.session_id and "face" in (body["first"], body["second"])

    conn = sqlite3.connect(report.database)
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(events)
    explained = [
        json.loads(r[0]) for r in conn.execute("SELECT explanation FROM windows WHERE explanation IS NOT NULL")
    ]
    assert len(explained) == report.windows  # explain.when = "every"
    faces = [e["channels"]["face"] for e in explained if "face" in e["channels"]]
    assert faces and all(len(f["map"]) == 8 and len(f["map"][0]) == 8 for f in faces)
    assert all(f["regions"]["mouth"] > f["regions"]["brows"] for f in faces)  # the smile carries it
    assert any(e["channels"].get("voice", {}).get("segments") for e in explained)
    assert all("explain_face_ms" in e["cost_ms"] for e in explained)
    # Word importances carry words: they are kept only where transcripts are.
    if store:
        assert any(e["channels"].get("words", {}).get("words") for e in explained)
    else:
        assert all("words" not in e["channels"] for e in explained)
    stored = [r[0] for r in conn.execute("SELECT text FROM transcripts ORDER BY start_s")]
    rows = conn.execute("SELECT words, timing FROM windows ORDER BY idx").fetchall()
    conn.close()
    assert any(json.loads(w)["quality"] == "good" for w, _ in rows)
    assert any("transcribe_ms" in json.loads(t) for _, t in rows)
    # Nothing of what was said is ever published; the database has it only when the room says so.
    published = b"".join(m[1] for m in collector.messages).lower()
    database = b"".join(f.read_bytes() for f in report.database.parent.glob(report.database.name + "*")).lower()
    for word in SPOKEN:
        assert word.encode() not in published
    if store:
        text = " ".join(stored).lower()
        assert "sister" in text and "walk" in text
        assert b"sister" in database
    else:
        assert stored == []
        for word in SPOKEN:
            assert word.encode() not in database


def test_a_live_room_explains_beside_its_windows(
    tmp_path: Path, default_pack: Path, demo_clip: Path, broker: Broker, collector: Collector
) -> None:
    """In real time (a live room) explanations come from the worker's thread: every window is stored
    and published, each with its explanation unless the device was too busy (then counted, not lost)."""
    path = write_config(
        tmp_path / "room.toml",
        face_model=tmp_path / "unused.onnx",
        state_dir=tmp_path / "state",
        mqtt_port=broker.port,
        pack=default_pack,
        extra='[explain]\nwhen = "every"\n',
    )
    path.write_text(path.read_text().replace("[capture]\n", "[capture]\nrealtime_files = true\n"))
    config = load_config(path)
    report = Appliance(config, demo_clip.as_uri()).run(consent=CONSENT)
    summaries = collector.wait_for("summary", report.windows)
    assert len(summaries) == report.windows == 13 and report.windows_dropped == 0
    conn = sqlite3.connect(report.database)
    explained = [
        json.loads(r[0]) for r in conn.execute("SELECT explanation FROM windows WHERE explanation IS NOT NULL")
    ]
    conn.close()
    assert explained and len(explained) + report.explanations_shed == report.windows
    assert all(e["reason"] == "every" and "explain_face_ms" in e["cost_ms"] for e in explained)


@pytest.mark.parametrize(
    ("live", "when", "worker"), [(True, "every", True), (False, "every", False), (True, "off", False)]
)
def test_only_a_live_room_explains_on_a_thread_of_its_own(
    words_models: ChannelModels, live: bool, when: str, worker: bool
) -> None:
    config = words_models.config
    explain = config.explain.model_copy(update={"when": when})
    models = dataclasses.replace(words_models, config=config.model_copy(update={"explain": explain}))
    channels = models.session(live=live)
    assert (channels.explanations is not None) == worker
    assert (channels.explainer is not None) == (when != "off")
    WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels).close()


def test_speech_going_on_at_the_session_s_end_is_transcribed(words_models: ChannelModels) -> None:
    """The session ends mid-speech (no pause after it): the utterance is still closed, its words are
    in the transcript and on their windows."""
    audio = np.concatenate([np.zeros(RATE, dtype=np.float32), read_wav(JFK)])
    windows = _windows(audio)
    summarizer = WindowSummarizer(
        "s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), words_models.session()
    )
    results, tail = _run(summarizer, windows)
    said = " ".join(u.text for r in results for u in r.transcript) + " ".join(u.text for u in tail.utterances)
    assert word_error_rate(JFK_TEXT, said) <= 0.1, said
    assert results[-1].words is not None and results[-1].words.quality == "good"


def test_transcription_yields_the_cpu(words_models: ChannelModels, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live room's passes run at channels.words.nice (10 by default), so on a busy device the
    face path gets the CPU first (whisper.cpp starts its workers from the calling thread, so they
    share it). Only the first pass is waited for: the rest may crawl on a busy machine, by design."""
    channels = words_models.session(live=True)
    words = channels.words
    assert words is not None and words.nice == 10
    passed = threading.Event()
    priorities: list[int] = []
    transcriber = words.stream.transcriber
    real = transcriber.transcribe

    def spy(audio: np.ndarray, **kwargs: object) -> object:
        priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        passed.set()
        return real(audio, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transcriber, "transcribe", spy)
    summarizer = WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels)
    try:
        for window in _windows(_spoken_jfk()):
            summarizer.summarize(window)
        assert passed.wait(timeout=600), "no transcription pass started"
    finally:
        words.close()
    assert priorities and set(priorities) == {10}


def test_a_live_room_never_waits_for_speech_to_text(words_models: ChannelModels) -> None:
    """Live: transcription runs on its own thread; a window is completed once its words are, and
    every window comes out once with its words: those with speech in order, those without speech
    as soon as they are analysed (possibly ahead of speech still being transcribed)."""
    windows = _windows(_spoken_jfk())
    channels = words_models.session(live=True)
    words = channels.words
    assert words is not None and not words.synchronous
    words.shed_after_s = 60.0  # this test hands windows over faster than real time
    # The order of the windows is what is tested here: at the room's nice value, on a machine kept
    # busy by other processes, transcription would crawl (as designed: see the next test).
    words.nice = 0
    summarizer = WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels)
    first = [r for w in windows for r in summarizer.summarize(w)]
    assert words.running  # transcription runs on its own thread beside the windows
    results, tail = _run(summarizer, [])
    results = first + results
    assert not words.running  # the worker ends with the session
    assert sorted(r.index for r in results) == [w.index for w in windows]
    # A window explained comes back from the explanation worker later; the others keep their order.
    plain = [r for r in results if r.explanation is None]
    spoken = [r.index for r in plain if not _without_client_speech(r)]
    assert spoken == sorted(spoken), "windows with speech complete in order"
    ahead = [r for i, r in enumerate(plain) if any(e.index < r.index for e in plain[i + 1 :])]
    assert all(_without_client_speech(r) for r in ahead), "only windows without speech go ahead"
    utterances = [u for r in results for u in r.transcript] + tail.utterances
    assert word_error_rate(JFK_TEXT, " ".join(u.text for u in utterances)) <= 0.1
    assert words.skipped == 0 and sum(r.words is not None and r.words.quality == "good" for r in results) >= 8


def test_a_live_room_s_quick_start_gives_way_to_audio_waiting(words_models: ChannelModels) -> None:
    """The quick start (a pass every second over a sentence's first seconds) is a live room's: a
    file's windows are transcribed every step_s whatever the machine. Live, while audio waits for
    the model (held here by the test), the quick passes are declined and counted; the words are
    still all there."""
    assert words_models.session().words.stream.quick_until == 0  # type: ignore[union-attr]
    windows = _windows(_spoken_jfk())
    channels = words_models.session(live=True)
    words = channels.words
    assert words is not None and words_models.transcriber is not None
    assert words.stream.quick_until == 5 * RATE  # the default
    words.shed_after_s = 60.0  # nothing is shed: the audio waits
    words.nice = 0  # on a machine kept busy by other processes a nice transcription would crawl
    words.stream.quick_budget_s = None  # however long a pass takes on this machine: only the waiting counts
    summarizer = WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels)
    with words_models.transcriber.lock:  # the model is busy with other work
        first = [r for w in windows for r in summarizer.summarize(w)]
    results, tail = _run(summarizer, [])
    assert words.stream.quick_declined >= 1 and words.skipped == 0
    utterances = [u for r in first + results for u in r.transcript] + tail.utterances
    assert word_error_rate(JFK_TEXT, " ".join(u.text for u in utterances)) <= 0.1


def test_a_live_room_behind_catches_up_in_one_pass(
    words_models: ChannelModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live, while audio waits for the model (held here by the test), the words channel does not
    transcribe the growing sentence once per step: once the model is free it passes over all the
    audio that waited at once, and the words are all there."""
    windows = _windows(_spoken_jfk())
    channels = words_models.session(live=True)
    words = channels.words
    transcriber = words_models.transcriber
    assert words is not None and transcriber is not None
    words.shed_after_s = 60.0  # nothing is shed: the audio waits
    words.nice = 0  # on a machine kept busy by other processes a nice transcription would crawl
    buffered: list[float] = []
    real = transcriber.transcribe

    def spy(audio: np.ndarray, **kwargs: object) -> object:
        buffered.append(audio.shape[0] / RATE)
        return real(audio, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transcriber, "transcribe", spy)
    summarizer = WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels)
    with transcriber.lock:  # the model is busy with other work
        first = [r for w in windows for r in summarizer.summarize(w)]
    results, tail = _run(summarizer, [])
    utterances = [u for r in first + results for u in r.transcript] + tail.utterances
    assert word_error_rate(JFK_TEXT, " ".join(u.text for u in utterances)) <= 0.1
    assert words.skipped == 0
    # The pass that waited for the model, one over everything that waited meanwhile, and the
    # utterances' closing passes; a pass every second or two of the 11 s sentence would be 6 or more.
    assert len(buffered) <= 2 + len(utterances), buffered


def test_behind_real_time_transcription_is_shed_first(words_models: ChannelModels) -> None:
    """While the speech-to-text model is busy (here: held by the test), the audio waiting for it
    passes ``shed_after_s``: that speech is left untranscribed, counted and its windows marked; the
    other channels' results are complete in every window."""
    windows = _windows(_spoken_jfk())
    channels = words_models.session(live=True)
    words = channels.words
    assert words is not None and words_models.transcriber is not None
    summarizer = WindowSummarizer("s", datetime.now(timezone.utc), VisionConfig(), AudioConfig(), channels)
    with words_models.transcriber.lock:  # the model is busy with other work
        first = [r for w in windows for r in summarizer.summarize(w)]
    results, _tail = _run(summarizer, [])
    results = first + results
    assert words.skipped >= 1
    assert sorted(r.index for r in results) == [w.index for w in windows]  # every window, once
    # Windows without speech were not held behind the speech waiting for the busy model.
    ahead = [r for i, r in enumerate(results) if any(e.index < r.index for e in results[i + 1 :])]
    assert ahead and all(_without_client_speech(r) for r in ahead)
    assert all(r.voice is not None for r in results)
    assert any(r.words is not None and r.words.quality == "skipped" for r in results)
