"""Speech features in numpy: log-mel spectrogram and the per-frame acoustic features.

25 ms Hann windows, 10 ms hop, HTK mel scale. The speech channel's models take these features; in
the room they stay in memory with the window and are never stored or sent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clinic_signals.filters import dct_matrix
from contract.audio import SAMPLE_RATE


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mel: npt.NDArray[np.float64] = 2595.0 * np.log10(1.0 + hz / 700.0)
    return mel


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_edges(n_mels: int, rate: int, fmin: float = 20.0, fmax: float | None = None) -> npt.NDArray[np.float64]:
    """``n_mels + 2`` band edges in Hz, equally spaced on the mel scale."""
    fmax = fmax or rate / 2
    return _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2))


def mel_filterbank(n_mels: int, n_fft: int, rate: int) -> npt.NDArray[np.float32]:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)``, each normalised to unit area (Slaney)."""
    edges = mel_edges(n_mels, rate)
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None] - lower) / (centre - lower)
    down = (upper - bins[None]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= 2.0 / (upper - lower)
    return fb.astype(np.float32)


class LogMel:
    """Log-mel features of a mono float32 signal: ``(frames, n_mels)`` in dB."""

    def __init__(self, rate: int = SAMPLE_RATE, n_mels: int = 64, win_s: float = 0.025, hop_s: float = 0.010) -> None:
        self.rate = rate
        self.win = round(win_s * rate)
        self.hop = round(hop_s * rate)
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.window = np.hanning(self.win).astype(np.float32)
        self.filters = mel_filterbank(n_mels, self.n_fft, rate)
        self.centres_hz = mel_edges(n_mels, rate)[1:-1]

    def __call__(self, signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if signal.shape[0] < self.win:
            return np.zeros((0, self.filters.shape[0]), dtype=np.float32)
        count = 1 + (signal.shape[0] - self.win) // self.hop
        idx = np.arange(self.win)[None, :] + self.hop * np.arange(count)[:, None]
        frames = signal[idx] * self.window
        power = np.abs(np.fft.rfft(frames, n=self.n_fft, axis=1)) ** 2
        mel = power.astype(np.float32) @ self.filters.T
        out: npt.NDArray[np.float32] = (10.0 * np.log10(np.maximum(mel, 1e-10))).astype(np.float32)
        return out


class FrameFeatures:
    """Per-frame acoustic features for the 1-D speech CNN: ``(channels, frames)``.

    Channels, in order: ``n_mfcc`` MFCCs (type-II DCT of the log-mel, orthonormal), 12 chroma bins
    (spectral power folded onto pitch classes, C first, each frame normalised to sum 1), ``n_mels``
    log-mel bands (dB), zero-crossing rate and RMS energy (dB). The same frame grid as
    :class:`LogMel`.
    """

    CHROMA_FMIN_HZ = 55.0  # A1; below it the FFT resolution cannot tell pitch classes apart

    def __init__(self, rate: int = SAMPLE_RATE, n_mels: int = 64, n_mfcc: int = 40) -> None:
        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
        self.logmel = LogMel(rate=rate, n_mels=n_mels)
        self.n_mfcc = n_mfcc
        self.channels = n_mfcc + 12 + n_mels + 2
        freqs = np.linspace(0, rate / 2, self.logmel.n_fft // 2 + 1)
        usable = freqs >= self.CHROMA_FMIN_HZ
        pitch_class = np.zeros(freqs.shape, dtype=np.int64)
        # MIDI note number 69 is A4 (440 Hz); pitch class 0 is C.
        pitch_class[usable] = np.round(69 + 12 * np.log2(freqs[usable] / 440.0)).astype(np.int64) % 12
        chroma = np.zeros((12, freqs.shape[0]), dtype=np.float32)
        chroma[pitch_class[usable], np.nonzero(usable)[0]] = 1.0
        self._chroma = chroma
        self._dct = dct_matrix(n_mels, n_mfcc).astype(np.float32)

    def __call__(self, signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        lm = self.logmel
        if signal.shape[0] < lm.win:
            return np.zeros((self.channels, 0), dtype=np.float32)
        count = 1 + (signal.shape[0] - lm.win) // lm.hop
        idx = np.arange(lm.win)[None, :] + lm.hop * np.arange(count)[:, None]
        raw = signal[idx]
        power = (np.abs(np.fft.rfft(raw * lm.window, n=lm.n_fft, axis=1)) ** 2).astype(np.float32)
        logmel = 10.0 * np.log10(np.maximum(power @ lm.filters.T, 1e-10))
        mfcc = logmel @ self._dct.T  # the orthonormal DCT-II's first n_mfcc coefficients
        chroma = power @ self._chroma.T
        chroma /= np.maximum(chroma.sum(axis=1, keepdims=True), 1e-10)
        signs = np.signbit(raw)
        zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1, keepdims=True)
        rms = 10.0 * np.log10(np.maximum(np.mean(raw.astype(np.float64) ** 2, axis=1, keepdims=True), 1e-10))
        out = np.concatenate([mfcc, chroma, logmel, zcr, rms], axis=1).T
        return np.ascontiguousarray(out, dtype=np.float32)


def centre_window(signal: npt.NDArray[np.float32], length: int) -> npt.NDArray[np.float32]:
    """The middle ``length`` samples of ``signal``, zero-padded on both sides when it is shorter: how
    training clips and the room's windows are fitted to a speech model's clip length."""
    if signal.shape[0] >= length:
        start = (signal.shape[0] - length) // 2
        return signal[start : start + length]
    out = np.zeros(length, dtype=np.float32)
    start = (length - signal.shape[0]) // 2
    out[start : start + signal.shape[0]] = signal
    return out
