"""The few signal-processing routines the room needs, in numpy: a Butterworth band-pass applied
forwards and backwards, Welch's power spectrum and the orthonormal DCT-II.

They compute what SciPy's ``butter(..., btype="bandpass", output="sos")``, ``sosfiltfilt``,
``welch`` (its defaults: periodic Hann window, half overlap, each segment's mean removed, density
scaling) and ``scipy.fft.dct(type=2, norm="ortho")`` compute, to rounding (tests/test_filters.py
holds them against SciPy). They are here because importing ``scipy.signal`` loads most of SciPy
(optimize, interpolate, stats, sparse, spatial): about 60 MiB resident in every room process, for
three small functions. The toolchain and the tests still use SciPy itself.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def butter_bandpass(order: int, low_hz: float, high_hz: float, fs: float) -> Floats:
    """Second-order sections ``(order, 6)`` ``[b0, b1, b2, 1, a1, a2]`` of a digital Butterworth
    band-pass of ``order`` (the low-pass prototype's order; the band-pass has twice as many poles)
    between ``low_hz`` and ``high_hz`` at sampling rate ``fs``.

    The analog prototype's poles are moved to the band (``s -> (s^2 + w0^2) / (s * bw)``) at
    pre-warped edges and mapped by the bilinear transform. Its zeros are ``order`` at z = 1 and
    ``order`` at z = -1, one of each per section: every section's numerator is ``g * [1, 0, -1]``,
    the gain in the first. A band so wide that a pole pair turns real (an odd order's real
    prototype pole, a band wider than twice its centre) is refused: the room's 4th-order pulse band
    never is.
    """
    nyquist = fs / 2.0
    if not 0.0 < low_hz < high_hz < nyquist:
        raise ValueError(f"band {low_hz}-{high_hz} Hz must lie within 0-{nyquist} Hz (sampling at {fs} Hz)")
    if order < 1:
        raise ValueError(f"order must be at least 1, not {order}")
    fs2 = 2.0 * fs
    low, high = (fs2 * np.tan(np.pi * f / fs) for f in (low_hz, high_hz))  # pre-warped, rad/s
    bandwidth, centre = high - low, np.sqrt(low * high)
    prototype = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2) / (2 * order))
    scaled = prototype * bandwidth / 2.0
    root = np.sqrt(scaled**2 - centre**2)
    analog = np.concatenate([scaled + root, scaled - root])
    digital = (fs2 + analog) / (fs2 - analog)
    # The band-pass's numerator is bw^order * s^order: its zeros at s = 0 map to z = 1, the ones the
    # transform adds (the degree difference) to z = -1, and the gain is carried over as below.
    gain = float(np.real(bandwidth**order * fs2**order / np.prod(fs2 - analog)))
    upper = digital[np.imag(digital) > 0]  # one pole of each conjugate pair
    if upper.shape[0] != order:
        raise ValueError(f"band {low_hz}-{high_hz} Hz at {fs} Hz gives real poles; pick a narrower band")
    upper = upper[np.argsort(np.abs(upper))]
    sos = np.zeros((order, 6))
    sos[:, 0], sos[:, 2] = 1.0, -1.0
    sos[:, 3], sos[:, 4], sos[:, 5] = 1.0, -2.0 * np.real(upper), np.abs(upper) ** 2
    sos[0, :3] *= gain
    return sos


def _section_initial_state(b: Floats, a: Floats) -> Floats:
    """The transposed direct form's state of one section at rest after a unit step (SciPy's
    ``lfilter_zi``)."""
    companion = np.array([[-a[1], -a[2]], [1.0, 0.0]])
    out: Floats = np.linalg.solve(np.eye(2) - companion.T, b[1:] - a[1:] * b[0])
    return out


def sos_initial_state(sos: Floats) -> Floats:
    """``(sections, 2)``: each section's state for a unit step already passed through the cascade
    (SciPy's ``sosfilt_zi``)."""
    state = np.empty((sos.shape[0], 2))
    scale = 1.0
    for i, section in enumerate(sos):
        b, a = section[:3], section[3:]
        state[i] = scale * _section_initial_state(b, a)
        scale *= b.sum() / a.sum()
    return state


def sosfilt(sos: Floats, signal: Floats, state: Floats) -> Floats:
    """``signal`` through the cascade of sections (transposed direct form II), from ``state``."""
    out = np.array(signal, dtype=np.float64)
    for (b0, b1, b2, _, a1, a2), initial in zip(sos.tolist(), state.tolist(), strict=True):
        z0, z1 = initial
        values = out.tolist()
        for n, x in enumerate(values):
            y = b0 * x + z0
            z0 = b1 * x - a1 * y + z1
            z1 = b2 * x - a2 * y
            values[n] = y
        out = np.asarray(values)
    return out


def sosfiltfilt(sos: Floats, signal: Floats) -> Floats:
    """``signal`` filtered forwards then backwards (no phase shift), its ends extended by odd
    reflection of ``3 * (2 * sections + 1)`` samples and each pass started at rest on its first
    sample, as SciPy's ``sosfiltfilt`` does."""
    x = np.asarray(signal, dtype=np.float64)
    pad = 3 * (2 * sos.shape[0] + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum())))
    if x.shape[0] <= pad:
        raise ValueError(f"a signal of {x.shape[0]} samples is too short for this filter (more than {pad} needed)")
    extended = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2 : -pad - 2 : -1]])
    state = sos_initial_state(sos)
    forward = sosfilt(sos, extended, state * extended[0])
    backward = sosfilt(sos, forward[::-1], state * forward[-1])[::-1]
    out: Floats = backward[pad:-pad]
    return out


def welch(signal: Floats, fs: float, nperseg: int, nfft: int) -> tuple[Floats, Floats]:
    """(frequencies, power spectral density) of ``signal``: segments of ``nperseg`` samples that
    overlap by half, each without its mean and under a periodic Hann window, their one-sided
    periodograms of ``nfft`` points averaged."""
    x = np.asarray(signal, dtype=np.float64)
    if not 0 < nperseg <= x.shape[0] or nfft < nperseg:
        raise ValueError(f"segments of {nperseg} samples ({nfft}-point transforms) need a signal at least that long")
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg)
    step = nperseg - nperseg // 2
    starts = np.arange(0, x.shape[0] - nperseg + 1, step)
    segments = x[starts[:, None] + np.arange(nperseg)]
    segments = (segments - segments.mean(axis=1, keepdims=True)) * window
    power = np.abs(np.fft.rfft(segments, n=nfft, axis=1)) ** 2 / (fs * float((window**2).sum()))
    if nfft % 2:
        power[:, 1:] *= 2.0
    else:
        power[:, 1:-1] *= 2.0
    freqs: Floats = np.fft.rfftfreq(nfft, 1.0 / fs)
    density: Floats = power.mean(axis=0)
    return freqs, density


def dct_matrix(size: int, count: int) -> Floats:
    """``(count, size)``: the first ``count`` rows of the orthonormal DCT-II of ``size`` points;
    ``x @ dct_matrix(n, k).T`` is ``scipy.fft.dct(x, type=2, norm="ortho")[..., :k]``."""
    n = np.arange(size)
    k = np.arange(count)[:, None]
    matrix = np.sqrt(2.0 / size) * np.cos(np.pi * (2 * n + 1) * k / (2 * size))
    matrix[0] /= np.sqrt(2.0)
    out: Floats = matrix
    return out
