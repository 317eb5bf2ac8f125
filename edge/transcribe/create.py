"""Choosing a speech-to-text backend by name; each is imported only when asked for."""

from __future__ import annotations

from pathlib import Path

from edge.transcribe.base import AudioContext, Backend, Transcriber
from edge.transcribe.errors import TranscriberError
from edge.transcribe.gpu import Device, faster_whisper_device, whisper_cpp_on_gpu

# Threads of each engine when the configuration leaves them out. faster-whisper (CTranslate2 on
# OpenMP) wakes and parks its second thread at every operation of the model: on two cores that
# cost a fifth more CPU per second of speech and made no pass quicker (docs/benchmarks.md).
DEFAULT_THREADS: dict[Backend, int] = {"whisper.cpp": 2, "faster-whisper": 1}


def create_transcriber(
    backend: Backend,
    model: Path,
    *,
    threads: int | None = None,
    vad: bool = True,
    device: Device = "auto",
    context: AudioContext = "fitted",
) -> Transcriber:
    """A transcriber for ``backend`` with ``model`` (a ggml file, or a CTranslate2 folder), checked
    before the native library sees it; ``context`` is faster-whisper's audio context
    (:mod:`edge.transcribe.faster`); ``threads`` None: the engine's :data:`DEFAULT_THREADS`.

    Raises:
        TranscriberError: unknown back-end, back-end not installed, or a missing/corrupt model.
    """
    threads = threads or DEFAULT_THREADS.get(backend, 1)
    if backend == "whisper.cpp":
        from edge.transcribe.whispercpp import WhisperCppTranscriber  # noqa: PLC0415

        return WhisperCppTranscriber(model, threads=threads, vad=vad, gpu=whisper_cpp_on_gpu(device))
    if backend == "faster-whisper":
        from edge.transcribe.faster import FasterWhisperTranscriber  # noqa: PLC0415

        return FasterWhisperTranscriber(
            model, threads=threads, vad=vad, device=faster_whisper_device(device), context=context
        )
    raise TranscriberError(f"unknown transcription back-end {backend!r}; use whisper.cpp or faster-whisper")
