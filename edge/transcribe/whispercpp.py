"""whisper.cpp back-end (pywhispercpp): runs a ggml file, such as the one ``clinic-export
whisper-ggml`` converts from the packaged weights."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from clinic_signals.model_files import ModelFileError, check_ggml
from edge.transcribe.base import Segment, Transcriber
from edge.transcribe.errors import TranscriberError

logger = logging.getLogger(__name__)

MAKE_HINT = "make it with `clinic-export whisper-ggml --out <file>` (scripts/setup.sh does)"


class WhisperCppTranscriber(Transcriber):
    name: ClassVar[str] = "whisper.cpp"

    def __init__(self, model: Path, *, threads: int = 2, vad: bool = True) -> None:
        super().__init__(vad=vad)
        if not model.is_file():
            raise TranscriberError(f"whisper.cpp model not found: {model}; {MAKE_HINT}")
        try:
            summary = check_ggml(model)
        except ModelFileError as exc:
            raise TranscriberError(f"{exc}; {MAKE_HINT}") from None
        try:
            from pywhispercpp.model import Model  # noqa: PLC0415
        except ImportError as exc:
            raise TranscriberError(f"pywhispercpp is not installed: {exc}") from None
        with contextlib.redirect_stdout(io.StringIO()):
            self._model: Any = Model(
                str(model), n_threads=threads, print_progress=False, print_realtime=False, language="en"
            )
        logger.info("transcription: whisper.cpp %s (%d tensors)", model, len(summary.tensors))

    def _transcribe(self, audio: npt.NDArray[np.float32]) -> list[Segment]:
        segments = self._model.transcribe(audio, no_context=True)
        # pywhispercpp reports times in centiseconds.
        return [Segment(s.t0 / 100.0, s.t1 / 100.0, str(s.text)) for s in segments]
