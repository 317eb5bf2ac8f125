"""clinic_signals.filters against SciPy, the reference it stands in for in the room: the same
Butterworth band-pass, forward-backward filtering, Welch spectrum and DCT, to rounding."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.signal

from clinic_signals import filters
from clinic_signals.rppg import BAND_HZ, estimate_pulse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("order", [2, 4, 6, 8])
@pytest.mark.parametrize(("fs", "band"), [(10.0, BAND_HZ), (6.5, BAND_HZ), (30.0, BAND_HZ), (100.0, (1.0, 40.0))])
def test_band_pass_design_has_scipys_response(order: int, fs: float, band: tuple[float, float]) -> None:
    ours = filters.butter_bandpass(order, *band, fs=fs)
    theirs = scipy.signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    _, h_ours = scipy.signal.sosfreqz(ours, worN=1024, fs=fs)
    _, h_theirs = scipy.signal.sosfreqz(theirs, worN=1024, fs=fs)
    assert np.abs(h_ours - h_theirs).max() < 1e-9
    poles_ours, poles_theirs = (np.sort_complex(scipy.signal.sos2zpk(s)[1]) for s in (ours, theirs))
    assert np.abs(poles_ours - poles_theirs).max() < 1e-9


@pytest.mark.parametrize(
    ("fs", "low", "high", "order"),
    [(5.0, 0.7, 3.0, 4), (10.0, 3.0, 0.7, 4), (10.0, 0.0, 3.0, 4), (10.0, 0.7, 3.0, 0), (10.0, 0.7, 3.0, 1)],
)
def test_impossible_band_pass_is_refused(fs: float, low: float, high: float, order: int) -> None:
    with pytest.raises(ValueError, match=r"band|order|real poles"):
        filters.butter_bandpass(order, low, high, fs=fs)


@pytest.mark.parametrize(("fs", "seconds"), [(10.0, 10.0), (7.5, 12.0), (15.0, 6.0), (30.0, 20.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_backward_filtering_matches_scipy(fs: float, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    signal = 3.0 * np.sin(2 * np.pi * 1.2 * t) + rng.normal(size=t.shape) + 40.0 + 0.5 * t  # offset and drift
    sos = scipy.signal.butter(4, BAND_HZ, btype="bandpass", fs=fs, output="sos")
    ours, theirs = filters.sosfiltfilt(sos, signal), scipy.signal.sosfiltfilt(sos, signal)
    assert np.abs(ours - theirs).max() < 1e-9 * np.abs(theirs).max()


def test_too_short_a_signal_is_refused_as_scipy_does() -> None:
    sos = filters.butter_bandpass(4, *BAND_HZ, fs=10.0)
    with pytest.raises(ValueError, match="too short"):
        filters.sosfiltfilt(sos, np.ones(27))
    with pytest.raises(ValueError, match="padlen"):
        scipy.signal.sosfiltfilt(sos, np.ones(27))
    assert filters.sosfiltfilt(sos, np.ones(28)).shape == (28,)


@pytest.mark.parametrize(("n", "nperseg", "nfft"), [(100, 80, 2048), (150, 80, 2048), (61, 61, 2048), (300, 240, 301)])
def test_welch_matches_scipy(n: int, nperseg: int, nfft: int) -> None:
    signal = np.random.default_rng(n).normal(size=n) + 5.0
    freqs, power = filters.welch(signal, 10.0, nperseg=nperseg, nfft=nfft)
    their_freqs, their_power = scipy.signal.welch(signal, fs=10.0, nperseg=nperseg, nfft=nfft)
    assert np.array_equal(freqs, their_freqs)
    assert np.abs(power - their_power).max() < 1e-12 * their_power.max()


@pytest.mark.parametrize(("size", "count"), [(64, 40), (40, 13), (8, 8)])
def test_dct_matrix_is_scipys_orthonormal_dct(size: int, count: int) -> None:
    x = np.random.default_rng(size).normal(size=(5, size))
    theirs = scipy.fft.dct(x, type=2, axis=1, norm="ortho")[:, :count]
    assert np.abs(x @ filters.dct_matrix(size, count).T - theirs).max() < 1e-12


@pytest.mark.parametrize(("bpm", "fps"), [(60.0, 10.0), (84.0, 10.0), (110.0, 15.0)])
def test_pulse_estimate_is_the_same_as_with_scipy(bpm: float, fps: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The room's whole pulse estimate, once on these filters and once on SciPy's."""
    rng = np.random.default_rng(int(bpm))
    t = np.arange(int(12 * fps)) / fps
    pulse = 0.6 * np.sin(2 * np.pi * bpm / 60.0 * t)
    rgb = np.stack([150 + 0.3 * pulse, 110 + pulse, 90 + 0.5 * pulse], axis=1) + rng.normal(0, 0.2, (t.size, 3))
    valid = np.ones(t.size, dtype=bool)
    ours = estimate_pulse(rgb, valid, fps)
    from clinic_signals import rppg

    monkeypatch.setattr(rppg, "sosfiltfilt", scipy.signal.sosfiltfilt)
    monkeypatch.setattr(
        rppg, "welch", lambda x, fs, nperseg, nfft: scipy.signal.welch(x, fs=fs, nperseg=nperseg, nfft=nfft)
    )
    theirs = estimate_pulse(rgb, valid, fps)
    assert ours.reason == theirs.reason == "ok"
    assert ours.bpm == theirs.bpm and ours.bpm is not None and abs(ours.bpm - bpm) < 3.0
    assert ours.snr_db == pytest.approx(theirs.snr_db, abs=1e-9)
