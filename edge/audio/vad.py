"""The windows' voice activity: which 10 ms feature frames hold speech.

``audio.vad = "silero"`` (the default): Silero VAD, the field's reference learned detector (MIT; its
ONNX model ships in the faster-whisper wheel, run here by ONNX Runtime), gives a speech probability
per 32 ms chunk; a frame is voiced when its chunk's probability reaches ``audio.vad_threshold`` and
the frame is above the absolute floor (``silence_dbfs``). Tones, music, keyboards and doors carry
energy in the speech band but are not speech: the learned detector leaves them out, where the
energy rule took a warbling tone or typing as voiced in every window (``benchmarks/non_speech.py``).

Speaker attribution still takes its partials over the energy rule's frames (and keeps, of the
client's, only what the learned detector calls speech): moved onto the learned frames, the client's
profile was founded far later on the real-voice conversation (``tests/test_speakers.py``: the
client's speech attributed to the client fell from 40 % to 9 %), which is not yet understood.

``audio.vad = "energy"``: the speech-band rule. Each frame's level is the energy of the mel bands
centred in 300-3400 Hz, so hum and rumble do not count; a frame is voiced when that level is above
``silence_dbfs`` and at least ``vad_margin_db`` above the window's noise floor (10th percentile).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from clinic_signals.audio import LogMel
from edge.config.models import AudioConfig
from edge.deferred import import_module
from edge.errors import ModelError

SPEECH_BAND_HZ = (300.0, 3400.0)


@dataclass(frozen=True, slots=True)
class VoiceActivity:
    voiced_ratio: float  # fraction of 10 ms feature frames judged voiced
    level_dbfs: float  # RMS level of the whole window
    noise_floor_dbfs: float
    clipped_ratio: float  # fraction of samples at or above 0.999 full scale
    voiced: npt.NDArray[np.bool_]  # per feature frame
    # The speech-band energy rule's frames where the learned detector decided ``voiced``: speaker
    # attribution takes its partials over these (None: the energy rule decided ``voiced`` itself).
    energy_voiced: npt.NDArray[np.bool_] | None = None


def _dbfs(power: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    return np.asarray(10.0 * np.log10(np.maximum(power, 1e-12)))


def detect_voice(
    signal: npt.NDArray[np.float32],
    mel_db: npt.NDArray[np.float32],
    centres_hz: npt.NDArray[np.float64],
    *,
    win: int,
    hop: int,
    silence_dbfs: float,
    margin_db: float,
) -> VoiceActivity:
    """Voice activity of a window from its samples and their log-mel features ``(frames, n_mels)``
    computed with frames of ``win`` samples every ``hop`` samples."""
    count = mel_db.shape[0]
    if count == 0:
        return VoiceActivity(0.0, -120.0, -120.0, 0.0, np.zeros(0, dtype=bool))
    idx = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    frame_dbfs = _dbfs((signal[idx].astype(np.float64) ** 2).mean(axis=1))
    band = (centres_hz >= SPEECH_BAND_HZ[0]) & (centres_hz <= SPEECH_BAND_HZ[1])
    band_db = _dbfs((10.0 ** (mel_db[:, band].astype(np.float64) / 10.0)).sum(axis=1))
    floor_band = float(np.percentile(band_db, 10))
    voiced = (frame_dbfs > silence_dbfs) & (band_db > floor_band + margin_db)
    return VoiceActivity(
        voiced_ratio=float(voiced.mean()),
        level_dbfs=float(_dbfs(float((signal.astype(np.float64) ** 2).mean()))),
        noise_floor_dbfs=float(np.percentile(frame_dbfs, 10)),
        clipped_ratio=float((np.abs(signal) >= 0.999).mean()),
        voiced=voiced,
    )


CHUNK = 512  # Silero VAD's step at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk the model sees before each chunk
HISTORY_CHUNKS = 640  # about 20 s of probabilities kept (a window needs its own 2.5 s and what led to it)
MIN_SPEECH_CHUNKS = 8  # 256 ms: shorter bursts are not speech (Silero's own min_speech_duration_ms is 250)
HYSTERESIS = 0.15  # speech goes on until the probability falls this far below the threshold
MIN_SILENCE_CHUNKS = 31  # a pause under 1 s between two stretches of speech is part of the speech


@functools.lru_cache(maxsize=1)
def _silero() -> Any:
    """The Silero VAD model of the faster-whisper wheel (one per process, shared by every room)."""
    try:
        get_vad_model = import_module("faster_whisper.vad").get_vad_model
    except ImportError as exc:  # a broken install: faster-whisper is one of the product's dependencies
        raise ModelError(
            f"audio.vad = 'silero' needs faster-whisper (its Silero VAD model): {exc}; reinstall with "
            "scripts/setup.sh, or set audio.vad = 'energy'"
        ) from None
    return get_vad_model().session


def prepare(config: AudioConfig) -> None:
    """Load the learned detector now (at the room's start), so a broken install is said at once.

    Raises:
        ModelError: faster-whisper, which ships the model, cannot be imported.
    """
    if config.vad == "silero":
        _silero()


class SpeechStream:
    """Silero VAD over a session's sound as one stream: each 32 ms chunk is judged once, in order, with
    the model's memory carried from chunk to chunk (a model restarted on every window takes the onset
    of a tone for speech), and the probabilities turned into speech the way Silero's own segmenter
    does: speech starts at ``threshold``, lasts until the probability falls ``HYSTERESIS`` below it,
    and a run shorter than ``MIN_SPEECH_CHUNKS`` is not speech. Windows overlap: what a window shares
    with the one before is not judged again. A gap (a capture that reconnected) starts afresh."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._reset(0)

    def _reset(self, chunk: int) -> None:
        self._first = chunk  # absolute index of self._probs[0]
        self._probs = np.zeros(0, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    @property
    def _next(self) -> int:
        return self._first + self._probs.shape[0]

    def feed(self, signal: npt.NDArray[np.float32], start_sample: int) -> None:
        """Judge the chunks of ``signal`` (beginning at ``start_sample`` of the stream) not yet judged."""
        if not self._probs.size or self._next * CHUNK < start_sample:  # the first window, or a gap
            self._reset(-(-start_sample // CHUNK))  # from the signal's first whole chunk
        end = (start_sample + signal.shape[0]) // CHUNK
        if end <= self._next:
            return
        offset = self._next * CHUNK - start_sample
        chunks = signal[offset : offset + (end - self._next) * CHUNK].reshape(-1, CHUNK).astype(np.float32)
        contexts = np.vstack([self._context[None, :], chunks[:-1, -CONTEXT:]])
        rows = np.ascontiguousarray(np.hstack([contexts, chunks]))
        probs, self._h, self._c = _silero().run(None, {"input": rows, "h": self._h, "c": self._c})
        self._context = chunks[-1, -CONTEXT:].copy()
        self._probs = np.concatenate([self._probs, np.asarray(probs, dtype=np.float32).reshape(-1)])
        if self._probs.shape[0] > HISTORY_CHUNKS:
            drop = self._probs.shape[0] - HISTORY_CHUNKS
            self._probs, self._first = self._probs[drop:], self._first + drop

    def speech(self) -> tuple[int, npt.NDArray[np.bool_]]:
        """(absolute index of the first chunk, speech per chunk) over the kept history."""
        on = np.zeros(self._probs.shape[0], dtype=bool)
        start: int | None = None
        for k, p in enumerate(self._probs):
            if start is None and p >= self.threshold:
                start = k
            elif start is not None and p < self.threshold - HYSTERESIS:
                if k - start >= MIN_SPEECH_CHUNKS:
                    on[start:k] = True
                start = None
        if start is not None and on.shape[0] - start >= MIN_SPEECH_CHUNKS:
            on[start:] = True  # still going, long enough already
        change = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(change == 1), np.flatnonzero(change == -1)  # runs of speech, end exclusive
        for end, again in zip(ends[:-1], starts[1:], strict=True):
            if again - end <= MIN_SILENCE_CHUNKS:
                on[end:again] = True  # a short pause inside speech
        return self._first, on


def learned_voice(
    signal: npt.NDArray[np.float32],
    energy: VoiceActivity,
    stream: SpeechStream,
    start_sample: int,
    *,
    win: int,
    hop: int,
    silence_dbfs: float,
) -> VoiceActivity:
    """``energy``'s window with its voiced frames decided by the learned detector's ``stream``."""
    count = energy.voiced.shape[0]
    if count == 0:
        return energy
    stream.feed(signal, start_sample)
    first, on = stream.speech()
    chunk = (start_sample + hop * np.arange(count) + win // 2) // CHUNK - first
    inside = (chunk >= 0) & (chunk < on.shape[0])
    speech = np.zeros(count, dtype=bool)
    speech[inside] = on[chunk[inside]]
    idx = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    loud = _dbfs((signal[idx].astype(np.float64) ** 2).mean(axis=1)) > silence_dbfs
    voiced = speech & loud
    return replace(energy, voiced_ratio=float(voiced.mean()), voiced=voiced, energy_voiced=energy.voiced)


def voice_activity(
    signal: npt.NDArray[np.float32],
    logmel: LogMel,
    config: AudioConfig,
    stream: SpeechStream | None = None,
    start_sample: int = 0,
) -> VoiceActivity:
    """Voice activity of ``signal`` with the room's settings (memory only). With ``stream`` (a
    session's), ``signal`` is its stretch from ``start_sample`` on; without, a recording on its own."""
    energy = detect_voice(
        signal,
        logmel(signal),
        logmel.centres_hz,
        win=logmel.win,
        hop=logmel.hop,
        silence_dbfs=config.silence_dbfs,
        margin_db=config.vad_margin_db,
    )
    if config.vad == "energy":
        return energy
    return learned_voice(
        signal,
        energy,
        stream if stream is not None else SpeechStream(config.vad_threshold),
        start_sample if stream is not None else 0,
        win=logmel.win,
        hop=logmel.hop,
        silence_dbfs=config.silence_dbfs,
    )
