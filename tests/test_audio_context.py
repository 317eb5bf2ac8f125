"""faster-whisper's fitted audio context: the encoder sees the speech and a margin instead of 30 s,
and a buffer whose fitted decoding fails Whisper's own checks is transcribed again with 30 s, unless
the pass is provisional (a streaming hypothesis): its answer is then withheld."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.audio.features import LogMel
from edge.audio.vad import voice_activity
from edge.config.models import AudioConfig, WordsChannelConfig
from edge.transcribe import create_transcriber, faster
from edge.transcribe.base import Segment
from edge.transcribe.faster import FRAMES_PER_S, FasterWhisperTranscriber, _sound, fitted_features
from edge.transcribe.stream import StreamingTranscriber
from edge.transcribe.wer import word_error_rate
from export.data.inputs import read_wav
from export.whisper_ggml import packaged_model_dir

JFK = Path(__file__).parent / "data" / "jfk.wav"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def _features(content: int, total: int = 3000, batch: bool = False) -> np.ndarray:
    features = np.zeros((80, total), np.float32)
    features[:, :content] = -0.5  # a log-mel frame of audio is never all zero
    return features[None] if batch else features


@pytest.mark.unit
@pytest.mark.parametrize(
    ("content", "batch", "kept"),
    [
        (250, False, 500),  # 2.5 s of speech + 2 s, rounded up to whole seconds
        (300, False, 500),
        (301, True, 600),
        (0, False, 200),  # nothing but padding: the margin alone
        (2900, False, 3000),  # the margin reaches past 30 s: the whole window
        (3000, True, 3000),
    ],
)
def test_fitted_features_keep_the_speech_and_the_margin(content: int, batch: bool, kept: int) -> None:
    features = _features(content, batch=batch)
    out = fitted_features(features)
    assert out.shape[-1] == kept and out.ndim == features.ndim
    assert np.array_equal(out, features[..., :kept])
    assert kept % FRAMES_PER_S == 0


def _segment(compression: float, logprob: float, no_speech: float) -> Segment:
    return Segment(0.0, 1.0, "words", (), no_speech_prob=no_speech, avg_logprob=logprob, compression_ratio=compression)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("compression", "logprob", "no_speech", "sound"),
    [
        (1.2, -0.3, 0.01, True),
        (2.6, -0.3, 0.01, False),  # repetitive: redone with 30 s
        (1.2, -1.4, 0.01, False),  # unlikely and not silence: redone
        (1.2, -0.8, 0.78, False),  # likely words over what may be quiet ("Thank you."): redone
    ],
)
def test_a_decoding_is_kept_on_whispers_own_rules(
    compression: float, logprob: float, no_speech: float, sound: bool
) -> None:
    assert _sound(_segment(compression, logprob, no_speech)) is sound


@pytest.mark.parametrize(
    ("provisional", "passes"),
    [
        (True, {"fitted": 1, "full": 0, "withheld": 1}),  # a hypothesis: withheld, no 30 s pass
        (False, {"fitted": 1, "full": 1, "withheld": 0}),  # a final answer: redone with 30 s
    ],
)
def test_a_doubtful_fitted_answer_is_withheld_only_when_provisional(
    provisional: bool, passes: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faster, "_sound", lambda segment: False)  # every fitted decoding doubtful
    transcriber = create_transcriber("faster-whisper", packaged_model_dir())
    assert isinstance(transcriber, FasterWhisperTranscriber)
    transcript = transcriber.transcribe(read_wav(JFK), words=True, vad=False, provisional=provisional)
    assert transcriber.passes == passes
    assert transcript.withheld is provisional
    if provisional:
        assert transcript.segments == () and transcript.words == ()
    else:
        assert word_error_rate(JFK_TEXT, transcript.text) == 0.0, transcript.text


@pytest.mark.unit
def test_the_room_defaults_to_the_fitted_context() -> None:
    assert WordsChannelConfig().audio_context == "fitted"


def _stream(transcriber: FasterWhisperTranscriber, audio: np.ndarray) -> str:
    """The room's streaming path over ``audio``, a second at a time."""
    stream = StreamingTranscriber(transcriber)
    config = AudioConfig()
    logmel = LogMel(n_mels=config.n_mels)
    texts = []
    for k in range(audio.shape[0] // 16_000):
        chunk = audio[k * 16_000 : (k + 1) * 16_000]
        voiced = bool(np.mean(voice_activity(chunk, logmel, config).voiced) > 0.3)
        texts += [u.text for u in stream.feed(chunk, float(k), voiced=voiced)]
    texts += [u.text for u in stream.finish()]
    return " ".join(texts)


def test_fitted_context_reads_the_demo_scene_as_30_s_does_for_less(demo_clip: Path) -> None:
    from faster_whisper import decode_audio

    audio = np.tile(decode_audio(str(demo_clip), sampling_rate=16_000), 2)  # the scene twice, as a room hears it
    said = {}
    transcribers = {}
    for context in ("full", "fitted"):
        transcriber = create_transcriber("faster-whisper", packaged_model_dir(), context=context)  # type: ignore[arg-type]
        assert isinstance(transcriber, FasterWhisperTranscriber)
        said[context] = _stream(transcriber, audio)
        transcribers[context] = transcriber
        transcriber.close()
    full, fitted = transcribers["full"], transcribers["fitted"]
    assert "feeling much better" in said["full"]
    assert word_error_rate(said["full"], said["fitted"]) == 0.0, said
    assert full.passes == {"fitted": 0, "full": full.passes["full"], "withheld": 0} and full.passes["full"] >= 4
    # Every buffer is tried fitted; on this scene some fail Whisper's checks: the streaming hypotheses
    # among them are withheld, the utterances' last passes redone with 30 s.
    assert fitted.passes["fitted"] == full.passes["full"]
    assert fitted.passes["withheld"] >= 1, fitted.passes
    assert fitted.passes["full"] + fitted.passes["withheld"] < fitted.passes["fitted"]
    assert fitted.frames_encoded < full.frames_encoded / 2
