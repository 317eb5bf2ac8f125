"""whisper.cpp back-end (pywhispercpp): runs a ggml file, such as the one ``clinic-export
whisper-ggml`` converts from the packaged weights."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from clinic_common.native_logs import native_logs_to
from clinic_signals.model_files import ModelFileError, check_ggml
from edge.transcribe.base import Segment, Transcriber, Word
from edge.transcribe.errors import TranscriberError

logger = logging.getLogger(__name__)

NON_SPEECH = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")  # [BLANK_AUDIO], (music), *sighs*
MAKE_HINT = "make it with `clinic-export whisper-ggml --out <file>` (scripts/setup.sh does)"


class WhisperCppTranscriber(Transcriber):
    name: ClassVar[str] = "whisper.cpp"

    def __init__(self, model: Path, *, threads: int = 2, vad: bool = True, gpu: bool = False) -> None:
        """``gpu``: this whisper.cpp build has CUDA and may use it (:mod:`edge.transcribe.gpu`)."""
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
        with contextlib.redirect_stdout(io.StringIO()), native_logs_to(logger):  # model loading lines at DEBUG
            self._model: Any = Model(
                str(model),
                n_threads=threads,
                print_progress=False,
                print_realtime=False,
                language="en",
                context_params={"use_gpu": gpu},
            )
        self.device = "cuda" if gpu else "cpu"
        self.cpu_threads = threads
        logger.info(
            "transcription: whisper.cpp %s (%d tensors) on the %s, %d threads",
            model,
            len(summary.tensors),
            self.device.upper(),
            threads,
        )

    @override
    def _transcribe(
        self, audio: npt.NDArray[np.float32], *, words: bool, prompt: str, provisional: bool
    ) -> list[Segment]:
        # Every answer is given: a pass costs the same whatever it is used for.
        # pywhispercpp reports times in centiseconds.
        if not words:
            segments = self._model.transcribe(audio, no_context=True, initial_prompt=prompt)
            return [Segment(s.t0 / 100.0, s.t1 / 100.0, str(s.text)) for s in segments]
        # Token timestamps with one word per segment (whisper.cpp's own word splitting).
        pieces = self._model.transcribe(
            audio,
            no_context=True,
            initial_prompt=prompt,
            token_timestamps=True,
            max_len=1,
            split_on_word=True,
        )
        found = tuple(
            Word(p.t0 / 100.0, p.t1 / 100.0, text)
            for p in pieces
            if (text := str(p.text).strip()) and not NON_SPEECH.fullmatch(text)
        )
        if not found:
            return []
        return [Segment(found[0].start_s, found[-1].end_s, " ".join(w.text for w in found), found)]
