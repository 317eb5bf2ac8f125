"""Temperature scaling of class distributions: ``softmax(log p / T)``.

The toolchain fits ``T`` on held-out windows (:func:`clinic_signals.confidence.fit_temperature`);
the room applies it to every fused distribution. ``T > 1`` softens an over-confident model and
never changes the top class.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def scaled(probs: npt.NDArray[np.float64], temperature: float) -> npt.NDArray[np.float64]:
    """``probs`` (any leading shape, classes last) calibrated by ``temperature``."""
    if temperature == 1.0:
        return probs
    logits = np.log(np.maximum(probs, 1e-12)) / temperature
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    out: npt.NDArray[np.float64] = e / e.sum(axis=-1, keepdims=True)
    return out
