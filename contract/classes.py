"""The product's emotion classes (RAVDESS's eight, in its order) and their mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

CLASSES: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
# Valence of each class on the circumplex the product uses (the disparity's scale).
CLASS_VALENCE: dict[str, float] = {
    "neutral": 0.0,
    "calm": 0.5,
    "happy": 1.0,
    "sad": -1.0,
    "angry": -1.0,
    "fearful": -1.0,
    "disgust": -1.0,
    "surprised": 0.2,
}
Label = Literal["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def mean_distribution(rows: Sequence[Sequence[float]], digits: int = 5) -> tuple[float, ...] | None:
    """The mean of class distributions, rounded to ``digits`` and summing to exactly 1.

    Rounding can leave the sum a hair off 1; the remainder goes to the largest class.
    """
    if not rows:
        return None
    mean = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    values = [round(float(v), digits) for v in mean / mean.sum()]
    best = int(np.argmax(values))
    values[best] = round(values[best] + 1.0 - sum(values), digits)
    return tuple(values)
