"""Speaker embeddings' front end: the mel spectrogram the GE2E speaker encoder was trained on.

The encoder (Resemblyzer's GE2E LSTM, exported to ONNX by ``clinic-export speaker``) reads 40-band
mel power spectrograms of 16 kHz audio (25 ms periodic Hann windows, 10 ms hop, frames centred
with zero padding, Slaney mel scale and area normalisation, 0 Hz to 8 kHz: the defaults the
encoder was trained with), in partials of 160 frames (1.6 s). An utterance's embedding is the
L2-normalised mean of its partials' embeddings. Shared by the toolchain (parity and the INT8-free
export) and the room (enrolment and attribution), so both compute exactly the same features.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE

N_MELS = 40
WIN = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s
TARGET_DBFS = -30.0  # quiet speech is raised to this RMS level before embedding


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_part = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    out: npt.NDArray[np.float64] = np.where(hz >= min_log_hz, log_part, mels)
    return out


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    out: npt.NDArray[np.float64] = np.where(
        mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels
    )
    return out


def mel_filters(rate: int = SAMPLE_RATE, n_fft: int = WIN, n_mels: int = N_MELS) -> npt.NDArray[np.float32]:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)`` on the Slaney mel scale, each scaled to unit
    area (2 / bandwidth), from 0 Hz to the Nyquist frequency."""
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(rate / 2)), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    out: npt.NDArray[np.float32] = filters.astype(np.float32)
    return out


_FILTERS = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float64)  # periodic Hann


def mel_spectrogram(wav: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(frames, 40)`` mel power spectrogram; frame ``i`` is centred on sample ``i * HOP``."""
    padded = np.pad(wav.astype(np.float64), WIN // 2)
    count = 1 + (padded.shape[0] - WIN) // HOP
    if count <= 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    idx = np.arange(WIN)[None, :] + HOP * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(padded[idx] * _WINDOW, n=WIN, axis=1)) ** 2
    out: npt.NDArray[np.float32] = (power @ _FILTERS.T.astype(np.float64)).astype(np.float32)
    return out


def raise_level(wav: npt.NDArray[np.float32], target_dbfs: float = TARGET_DBFS) -> npt.NDArray[np.float32]:
    """Quiet audio raised to ``target_dbfs`` RMS (never lowered: loud speech is left as it is)."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 1e-9:
        return wav
    gain = 10 ** ((target_dbfs - 20 * np.log10(rms)) / 20)
    return (wav * gain).astype(np.float32) if gain > 1.0 else wav


def partials(mel: npt.NDArray[np.float32], step: int = PARTIAL_FRAMES // 2) -> npt.NDArray[np.float32]:
    """``(n, 160, 40)`` partials every ``step`` frames; the last one ends at the last frame, so every
    frame is covered. Shorter input gives one partial of what there is (the encoder reads any length)."""
    frames = mel.shape[0]
    if frames <= PARTIAL_FRAMES:
        return mel[None]
    starts = list(range(0, frames - PARTIAL_FRAMES + 1, step))
    if starts[-1] != frames - PARTIAL_FRAMES:
        starts.append(frames - PARTIAL_FRAMES)
    return np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])


def mean_embedding(embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The L2-normalised mean of unit embeddings ``(n, d)``."""
    mean = embeddings.astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    out: npt.NDArray[np.float32] = (mean / norm if norm > 0 else mean).astype(np.float32)
    return out
