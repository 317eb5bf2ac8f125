"""Temperature scaling of class distributions (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017): one scalar ``T`` that minimises the negative log-likelihood of held-out
labels under ``softmax(log p / T)`` (:func:`contract.temperature.scaled`, which the room applies).
``T > 1`` softens an over-confident model; it never changes the top class.

"Temperature" is this confidence scaling only; "calibration" in this project is the technician's
room checks (``edge/calibration``), and the INT8 quantiser's data is the "INT8 calibration set"."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar

from contract.temperature import scaled


def nll(probs: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], temperature: float = 1.0) -> float:
    p = scaled(probs, temperature)[np.arange(labels.shape[0]), labels]
    return float(-np.mean(np.log(np.maximum(p, 1e-12))))


def expected_calibration_error(probs: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], bins: int = 10) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by size."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def fit_temperature(probs: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]) -> float:
    """The temperature in [0.05, 20] that minimises the held-out negative log-likelihood."""
    if probs.ndim != 2 or labels.shape != (probs.shape[0],) or probs.shape[0] < 2:
        raise ValueError(f"need (N, classes) probabilities and N labels, got {probs.shape} and {labels.shape}")
    result = minimize_scalar(
        lambda log_t: nll(probs, labels, float(np.exp(log_t))), bounds=(np.log(0.05), np.log(20.0)), method="bounded"
    )
    return float(np.exp(result.x))
