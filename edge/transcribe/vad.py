"""Voice activity detection for transcription: Silero VAD as ONNX, shipped in faster-whisper's wheel
(run by ONNX Runtime), so silence never reaches the speech model."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.deferred import import_module
from edge.transcribe.errors import TranscriberError

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def voiced_chunks(
    audio: npt.NDArray[np.float32], *, min_silence_ms: int = 2000, pad_ms: int = 200
) -> list[tuple[float, npt.NDArray[np.float32]]]:
    """(start in seconds, samples) of each voiced stretch, padded a little at both ends. Pauses
    shorter than ``min_silence_ms`` stay inside a stretch, so a sentence keeps its context."""
    try:
        vad = import_module("faster_whisper.vad")
    except ImportError as exc:
        raise TranscriberError(f"voice activity detection needs faster-whisper (its Silero VAD model): {exc}") from None
    options = vad.VadOptions(min_silence_duration_ms=min_silence_ms, speech_pad_ms=pad_ms)
    stamps = vad.get_speech_timestamps(audio, options)
    return [(s["start"] / SAMPLE_RATE, audio[s["start"] : s["end"]]) for s in stamps]
