"""Speech to text: the ggml converter, both back-ends on a real recording (jfk.wav, public domain),
voice activity detection, and refusal of missing or corrupt model files before loading."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from clinic_signals.model_files import check_ggml
from edge import native
from edge.transcribe import TranscriberError, create_transcriber
from edge.transcribe.base import Transcriber, Transcript, Word
from edge.transcribe.faster import FasterWhisperTranscriber
from edge.transcribe.gpu import (
    Device,
    ctranslate2_cuda_devices,
    faster_whisper_device,
    whisper_cpp_info,
    whisper_cpp_on_gpu,
)
from edge.transcribe.stream import LocalAgreement, StreamingTranscriber
from edge.transcribe.wer import word_error_rate
from export.cli import main
from export.data.inputs import read_wav
from export.whisper_ggml import packaged_model_dir

JFK = Path(__file__).parent / "data" / "jfk.wav"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.fixture(scope="module")
def ggml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ggml") / "whisper-tiny.en.ggml.bin"
    assert main(["whisper-ggml", "--out", str(out)]) == 0
    return out


@pytest.mark.unit
def test_converted_file_has_tiny_en_shape_and_a_manifest(ggml: Path) -> None:
    summary = check_ggml(ggml)
    assert summary.hparams == {
        "n_vocab": 51864,
        "n_audio_ctx": 1500,
        "n_audio_state": 384,
        "n_audio_head": 6,
        "n_audio_layer": 4,
        "n_text_ctx": 448,
        "n_text_state": 384,
        "n_text_head": 6,
        "n_text_layer": 4,
        "n_mels": 80,
        "ftype": 1,
    }
    assert (
        "encoder.blocks.0.attn.key.weight" in summary.tensors
        and "encoder.blocks.0.attn.key.bias" not in summary.tensors
    )
    assert summary.tensors["encoder.conv1.bias"] == ((1, 384), 0)  # float32, [n, 1] as whisper.cpp reads it
    manifest = json.loads(ggml.with_suffix(".json").read_text())
    assert manifest["tensors"] == len(summary.tensors) == 167


@pytest.mark.parametrize("backend", ["whisper.cpp", "faster-whisper"])
def test_both_backends_transcribe_jfk(backend: str, ggml: Path) -> None:
    model = ggml if backend == "whisper.cpp" else packaged_model_dir()
    transcriber = create_transcriber(backend, model)  # type: ignore[arg-type]
    # a configuration without `threads` gets each engine's measured best (faster-whisper 1, whisper.cpp 2)
    assert transcriber.cpu_threads == {"whisper.cpp": 2, "faster-whisper": 1}[backend]
    transcript = transcriber.transcribe(read_wav(JFK))
    wer = word_error_rate(JFK_TEXT, transcript.text)
    assert wer <= 0.05, (transcript.text, wer)
    assert 0 < transcript.voiced_s <= transcript.audio_s == 11.0
    assert transcript.segments[0].start_s < transcript.segments[-1].end_s <= 11.5


@pytest.mark.unit
def test_silence_never_reaches_the_model(ggml: Path) -> None:
    transcriber = create_transcriber("whisper.cpp", ggml)
    speech = read_wav(JFK)
    padded = np.concatenate([np.zeros(16000 * 4, np.float32), speech, np.zeros(16000 * 4, np.float32)])
    transcript = transcriber.transcribe(padded)
    assert transcript.voiced_s < 11.5 and transcript.audio_s == 19.0
    assert transcript.segments[0].start_s >= 3.5  # times are in the original audio
    assert word_error_rate(JFK_TEXT, transcript.text) <= 0.05
    empty = transcriber.transcribe(np.zeros(16000 * 5, np.float32))
    assert empty.text == "" and empty.voiced_s == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "is truncated"),
        (lambda p: p.write_bytes(b"GGUF" + p.read_bytes()[4:]), "is not a whisper.cpp ggml file"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\x00" * 8), "bad tensor record|truncated"),
        (lambda p: p.unlink(), "whisper.cpp model not found: .*clinic-export whisper-ggml"),
    ],
)
def test_corrupt_ggml_is_refused_before_loading(ggml: Path, tmp_path: Path, damage: object, message: str) -> None:
    bad = tmp_path / "model.bin"
    shutil.copy(ggml, bad)
    damage(bad)  # type: ignore[operator]
    with pytest.raises(TranscriberError, match=message):
        create_transcriber("whisper.cpp", bad)


@pytest.mark.unit
def test_an_unknown_backend_is_named_in_the_error(tmp_path: Path) -> None:
    message = re.escape("unknown transcription back-end 'vosk'; use whisper.cpp or faster-whisper")
    with pytest.raises(TranscriberError, match=message):
        create_transcriber("vosk", tmp_path)  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "model.bin").write_bytes((d / "model.bin").read_bytes()[:1000]), "is truncated"),
        (lambda d: (d / "tokenizer.json").unlink(), "lacks tokenizer.json"),
        (
            lambda d: (d / "model.bin").write_bytes(b"\x09\x00\x00\x00" + (d / "model.bin").read_bytes()[4:]),
            "binary version 9",
        ),
    ],
)
def test_corrupt_ctranslate2_model_is_refused_before_loading(tmp_path: Path, damage: object, message: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(packaged_model_dir(), folder)
    damage(folder)  # type: ignore[operator]
    with pytest.raises(TranscriberError, match=message):
        create_transcriber("faster-whisper", folder)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("reference", "hypothesis", "wer"),
    [
        ("ask not what your country", "ask not what your country", 0.0),
        ("ask not what your country", "Ask not, what your country!", 0.0),
        ("ask not what your country", "ask what your country", 0.2),
        ("ask not what your country", "ask not what my country can", 0.4),
        ("", "", 0.0),
    ],
)
def test_word_error_rate(reference: str, hypothesis: str, wer: float) -> None:
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer)


def _words(spec: str, start: float = 0.0) -> list[Word]:
    """'a b c' -> words half a second long, one after the other from ``start``."""
    return [Word(start + i * 0.5, start + i * 0.5 + 0.4, t) for i, t in enumerate(spec.split())]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("hypotheses", "committed"),
    [
        # A word is final once two consecutive hypotheses agree on it (case and punctuation aside).
        (["and so", "and so my fellow"], "and so"),
        (["And so", "and so, my fellow", "and so my fellow Americans"], "and so, my fellow"),
        # A changed word ends the agreement; later agreement continues from there.
        (["and so am I", "and so my fellow", "and so my fellow Americans"], "and so my fellow"),
        # Nothing agrees: nothing is final.
        (["ask not", "asked what"], ""),
        # The hypothesis repeats what is committed at its start: never committed twice.
        (["a b", "a b c", "a b c d", "a b c d e"], "a b c d"),
    ],
)
def test_local_agreement_commits_what_two_hypotheses_share(hypotheses: list[str], committed: str) -> None:
    agreement = LocalAgreement()
    for hypothesis in hypotheses:
        agreement.insert(_words(hypothesis))
    assert " ".join(w.text for w in agreement.committed) == committed


@pytest.mark.unit
def test_local_agreement_after_a_sentence_was_taken() -> None:
    """After a closed sentence left the buffer, the new hypothesis starts later; the committed tail
    it repeats (a revised time, same words) is recognised as old."""
    agreement = LocalAgreement()
    agreement.insert(_words("I am sad. It was"))
    agreement.insert(_words("I am sad. It was hard"))
    assert agreement.take(3) == _words("I am sad.")
    later = [Word(1.45, 1.9, "It"), *_words("was hard today", start=2.0)]
    agreement.insert(later)
    assert [w.text for w in agreement.committed] == ["It", "was", "hard"]
    assert [w.text for w in agreement.flush(later)] == ["today"]


@pytest.mark.parametrize("backend", ["whisper.cpp", "faster-whisper"])
def test_streaming_stays_within_one_error_of_the_whole_file(backend: str, ggml: Path) -> None:
    """jfk.wav handed over a second at a time, as a room does: the committed words are within one
    error of the whole file's transcript, with times inside the speech."""
    model = ggml if backend == "whisper.cpp" else packaged_model_dir()
    transcriber = create_transcriber(backend, model)  # type: ignore[arg-type]
    speech = read_wav(JFK)
    whole = word_error_rate(JFK_TEXT, transcriber.transcribe(speech).text)
    audio = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(3 * 16000, np.float32)])
    stream = StreamingTranscriber(transcriber)
    closed = []
    for start in range(0, audio.shape[0], 16000):
        chunk = audio[start : start + 16000]
        closed += stream.feed(chunk, start / 16000, voiced=bool(np.sqrt(np.mean(chunk**2)) > 0.01))
    closed += stream.finish()
    text = " ".join(u.text for u in closed)
    assert word_error_rate(JFK_TEXT, text) <= whole + 1 / 22 + 1e-9, text
    words = [w for u in closed for w in u.words]
    assert words[0].start_s >= 0.0 and words[-1].end_s <= 12.5
    assert all(u.passes >= 1 and u.seconds > 0 for u in closed)
    assert not stream.speaking and stream.settled_until == audio.shape[0] / 16000


def _spied_transcriber() -> tuple[Transcriber, list[float]]:
    """The packaged faster-whisper model, and the seconds of audio of every pass asked of it."""
    transcriber = create_transcriber("faster-whisper", packaged_model_dir())
    buffered: list[float] = []
    real = transcriber.transcribe

    def spy(audio: npt.NDArray[np.float32], **kwargs: Any) -> Transcript:
        buffered.append(audio.shape[0] / 16000)
        return real(audio, **kwargs)

    transcriber.transcribe = spy  # type: ignore[method-assign]
    return transcriber, buffered


class PassClock:
    """A clock for the stream under which its passes take the given wall times, in order (the
    last one repeats): the load a room sees, without depending on this machine's."""

    def __init__(self, costs: list[float]) -> None:
        self.costs, self.now, self.calls = costs, 0.0, 0

    def __call__(self) -> float:
        if self.calls % 2:  # the end of a pass
            self.now += self.costs[min(self.calls // 2, len(self.costs) - 1)]
        self.calls += 1
        return self.now


@pytest.mark.parametrize(
    ("quick_start_s", "costs", "quick", "first_passes", "declined", "first_word_s"),
    [
        # every second while the sentence is under 5 s, then every 2 s: two passes agree by 2-3 s
        (5.0, [0.1], True, [1.0, 2.0, 3.0, 4.0, 6.0, 8.0], 0, (1.0, 3.0)),
        # every step_s throughout: no two passes before 4 s
        (0.0, [0.1], True, [2.0, 4.0, 6.0, 8.0], 0, (4.0, 8.0)),
        # a slow pass (a busy device) stops the quick passes; the regular pass at 3 s was quick
        # again, so they resume
        (5.0, [0.6, 0.1], True, [1.0, 3.0, 4.0, 6.0, 8.0], 1, (1.0, 4.0)),
        # slow throughout: after the first, passes every step_s
        (5.0, [0.6], True, [1.0, 3.0, 5.0, 7.0], 2, (3.0, 6.0)),
        # the caller is behind (more audio waits): no quick pass however cheap
        (5.0, [0.1], False, [2.0, 4.0, 6.0, 8.0], 2, (4.0, 8.0)),
    ],
)
def test_the_start_of_a_sentence_is_transcribed_every_second_while_passes_are_cheap(
    quick_start_s: float,
    costs: list[float],
    quick: bool,
    first_passes: list[float],
    declined: int,
    first_word_s: tuple[float, float],
) -> None:
    """The passes the stream asks of the real transcriber, by the seconds of speech in its buffer;
    the first committed word comes sooner with the quick start; the quick start gives way to slow
    passes (wall times over quick_budget_s, 0.2 s) and to a caller that is behind."""
    transcriber, buffered = _spied_transcriber()
    stream = StreamingTranscriber(
        transcriber, step_s=2.0, quick_start_s=quick_start_s, max_utterance_s=30.0, clock=PassClock(costs)
    )
    speech = read_wav(JFK)
    first_word_at = None
    for start in range(0, speech.shape[0] - 16000, 16000):
        stream.feed(speech[start : start + 16000], start / 16000, voiced=True, quick=quick)
        if first_word_at is None and stream.open_words:
            first_word_at = (start + 16000) / 16000
    assert [round(b, 1) for b in buffered][: len(first_passes)] == first_passes
    assert stream.quick_declined == declined
    assert first_word_at is not None and first_word_s[0] <= first_word_at <= first_word_s[1]


@pytest.mark.parametrize(
    ("deferred", "passes"),
    [
        (set(), [2.0, 4.0, 6.0, 8.0, 10.0]),  # caught up throughout: a pass every step_s
        ({3, 4, 5}, [2.0, 6.0, 8.0, 10.0]),  # behind for three seconds: one pass over them, not two
        ({2, 3, 4, 5, 6, 7, 8, 9}, [10.0]),  # behind from the start: one pass once caught up
    ],
)
def test_a_caller_behind_defers_the_passes_and_catches_up_in_one(deferred: set[int], passes: list[float]) -> None:
    """The seconds of speech in the buffer at each pass the stream asks of the real transcriber,
    when the feeds ending at the ``deferred`` seconds come while more audio waits (``defer``); the
    words come out all the same."""
    transcriber, buffered = _spied_transcriber()
    stream = StreamingTranscriber(transcriber, step_s=2.0, quick_start_s=0.0, max_utterance_s=30.0)
    speech = read_wav(JFK)
    closed = []
    for start in range(0, 10 * 16000, 16000):
        end_s = start // 16000 + 1
        closed += stream.feed(speech[start : start + 16000], start / 16000, voiced=True, defer=end_s in deferred)
    assert [round(b, 1) for b in buffered] == passes
    closed += stream.finish()
    text = " ".join(u.text for u in closed)
    assert word_error_rate(" ".join(JFK_TEXT.split()[:21]), text) <= 0.1, text  # the first ten seconds


ORIN_WHISPER_CPP = "WHISPER : COREML = 0 | OPENVINO = 0 | CUDA : ARCHS = 870 | USE_GRAPHS = 1 | CPU : NEON = 1 |"
CPU_WHISPER_CPP = "WHISPER : COREML = 0 | OPENVINO = 0 | CPU : SSE3 = 1 | AVX2 = 1 | OPENMP = 1 |"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("device", "info", "cuda_devices", "whisper_cpp", "faster"),
    [
        ("auto", ORIN_WHISPER_CPP, 1, True, "cuda"),  # a Jetson with both GPU builds
        ("auto", CPU_WHISPER_CPP, 0, False, "cpu"),  # this machine
        ("cpu", ORIN_WHISPER_CPP, 1, False, "cpu"),  # the room says CPU
        ("cuda", CPU_WHISPER_CPP, 0, False, "cpu"),  # asked for but not built with CUDA: CPU, with a warning
    ],
)
def test_the_words_channel_picks_the_gpu_build_when_present(
    device: Device, info: str, cuda_devices: int, whisper_cpp: bool, faster: str
) -> None:
    assert whisper_cpp_on_gpu(device, lambda: info) is whisper_cpp
    assert faster_whisper_device(device, lambda: cuda_devices) == faster


@pytest.mark.unit
def test_this_machine_has_the_cpu_builds() -> None:
    """The real libraries here: whisper.cpp without CUDA, CTranslate2 without a CUDA device."""
    assert "CPU" in whisper_cpp_info() and not whisper_cpp_on_gpu("auto")
    assert ctranslate2_cuda_devices() == 0 and faster_whisper_device("auto") == "cpu"


def test_the_engine_s_workers_are_known_so_that_they_can_yield() -> None:
    """faster-whisper runs its passes on workers CTranslate2 starts when the model loads: the
    transcriber knows them, and the words channel lowers their priority with its own."""
    transcriber = create_transcriber("faster-whisper", packaged_model_dir())
    workers = transcriber.threads & native.threads()
    assert workers, "CTranslate2 started no thread at load"
    assert native.lower_priority(workers, 10) == len(workers)
    transcriber.transcribe(read_wav(JFK)[:32000], words=True)
    assert all(os.getpriority(os.PRIO_PROCESS, tid) == 10 for tid in workers & native.threads())


@pytest.mark.parametrize("withhold", [False, True])
def test_a_withheld_pass_commits_and_settles_nothing(withhold: bool) -> None:
    """jfk.wav a second at a time with every provisional pass answered or withheld (the transcriber
    found its answer doubtful): withheld passes commit no word and leave the speech unsettled, and
    the utterance's last pass, never provisional, still gives all its words."""
    transcriber = create_transcriber("faster-whisper", packaged_model_dir())
    real = transcriber.transcribe
    provisional: list[bool] = []

    def withholding(audio: npt.NDArray[np.float32], **kwargs: Any) -> Transcript:
        provisional.append(kwargs["provisional"])
        if withhold and kwargs["provisional"]:
            return Transcript(segments=(), audio_s=audio.shape[0] / 16000, voiced_s=0.0, seconds=0.0, withheld=True)
        return real(audio, **kwargs)

    transcriber.transcribe = withholding  # type: ignore[method-assign]
    speech = read_wav(JFK)
    audio = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(3 * 16000, np.float32)])
    stream = StreamingTranscriber(transcriber, max_utterance_s=30.0)
    closed, settled, committed = [], [], 0
    for start in range(0, audio.shape[0], 16000):
        chunk = audio[start : start + 16000]
        closed += stream.feed(chunk, start / 16000, voiced=bool(np.sqrt(np.mean(chunk**2)) > 0.01))
        if stream.speaking:
            settled.append(stream.settled_until)
            committed = max(committed, len(stream.open_words) + sum(len(u.words) for u in closed))
    closed += stream.finish()
    text = " ".join(u.text for u in closed)
    assert provisional.count(False) == 1 and provisional[-1] is False and len(provisional) >= 5
    # Left to itself the transcriber withholds what it doubts (on jfk.wav, now and then a pass).
    assert isinstance(transcriber, FasterWhisperTranscriber)
    assert stream.withheld == (len(provisional) - 1 if withhold else transcriber.passes["withheld"])
    if withhold:
        assert committed == 0 and max(settled) <= 1.0  # nothing heard past the speech's onset
    else:
        assert committed > 0 and max(settled) > 5.0
    assert word_error_rate(JFK_TEXT, text) <= 2 / 22, text


@pytest.mark.parametrize("voice_known", [False, True])
def test_no_last_pass_over_the_quiet_after_a_closed_sentence(voice_known: bool) -> None:
    """jfk.wav (one sentence) and 6 s of quiet a second at a time, 4 s pauses: two passes agree on
    the sentence's full stop before the pause, and when the stream knows where the voice ended (the
    room's voice-activity frames), the quiet after it is not transcribed at the pause. (Without
    that, the pass over the quiet may add words never said: "Thank you." on this machine.)"""
    transcriber, buffered = _spied_transcriber()
    speech = read_wav(JFK)
    audio = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(6 * 16000, np.float32)])
    frames = audio[: audio.shape[0] // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.01)  # 10 ms frames with voice
    stream = StreamingTranscriber(transcriber, max_utterance_s=30.0, pause_s=4.0)
    closed = []
    passes_at_pause = 0
    for start in range(0, audio.shape[0], 16000):
        chunk = audio[start : start + 16000]
        heard = loud[loud * 160 < start + chunk.shape[0]]
        until = (heard[-1] + 1) * 160 / 16000 if voice_known and heard.size else None
        was_speaking = stream.speaking
        passes_at_pause = len(buffered)
        closed += stream.feed(
            chunk, start / 16000, voiced=bool(np.sqrt(np.mean(chunk**2)) > 0.01), voiced_until_s=until
        )
        if was_speaking and not stream.speaking:
            break
    assert not stream.speaking  # the pause ended the speech
    text = " ".join(u.text for u in closed)
    assert word_error_rate(JFK_TEXT, text.removesuffix(" Thank you.")) <= 1 / 22, text
    if voice_known:
        assert word_error_rate(JFK_TEXT, text) <= 1 / 22, text
    assert stream.quiet_ends == int(voice_known)
    assert len(buffered) - passes_at_pause == (0 if voice_known else 1)  # the pause's last pass


def test_a_short_voice_with_no_pass_yet_still_gets_its_last_pass() -> None:
    """A new utterance whose voice ends within TAIL_S of its buffer's start, closed by a pause before
    any pass: no sentence closed, so the pause's pass is made (the rule above is for the quiet
    after a closed sentence only)."""
    transcriber, buffered = _spied_transcriber()
    speech = read_wav(JFK)[:16000]
    stream = StreamingTranscriber(transcriber, step_s=4.0, quick_start_s=0.0)
    stream.feed(speech, 0.0, voiced=True, voiced_until_s=0.2)
    for k in (1, 2):
        stream.feed(np.zeros(16000, np.float32), float(k), voiced=False, voiced_until_s=0.2)
    assert not stream.speaking and stream.quiet_ends == 0
    assert buffered == [3.0]  # the pause's pass over the whole buffer
