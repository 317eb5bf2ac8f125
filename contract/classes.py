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
# The one colour key of the product (report, review page, hub): Paul Tol's muted scheme and Okabe-Ito's
# orange, told apart by readers with the common colour-vision deficiencies; drawn with white separators.
CLASS_COLOURS: dict[str, str] = {
    "neutral": "#9e9e9e",
    "calm": "#44aa99",
    "happy": "#ddcc77",
    "sad": "#332288",
    "angry": "#cc6677",
    "fearful": "#882255",
    "disgust": "#117733",
    "surprised": "#e69f00",
}
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
# Each class's place in the affect space the fusion shares (valence, arousal; Russell's circumplex of
# affect): on the unit circle at the angle of the class's word in Russell's scaling (Russell 1980, "A
# circumplex model of affect", J. Pers. Soc. Psychol. 39(6), 1161-1178, Fig. 2; degrees from the
# pleasure axis: happy 7.8, astonished 69.8, angry 99.8, afraid 116.0, sad 207.5, calm 316.2),
# neutral at the centre. Disgust is not among Russell's 28 words; the product places it at 150
# degrees, between his "annoyed" (123.0) and "miserable" (188.7).
CLASS_ANGLE_DEG: dict[str, float | None] = {
    "neutral": None,
    "calm": 316.2,
    "happy": 7.8,
    "sad": 207.5,
    "angry": 99.8,
    "fearful": 116.0,
    "disgust": 150.0,
    "surprised": 69.8,
}
CLASS_AFFECT: dict[str, tuple[float, float]] = {
    c: (0.0, 0.0) if a is None else (round(float(np.cos(np.radians(a))), 4), round(float(np.sin(np.radians(a))), 4))
    for c, a in CLASS_ANGLE_DEG.items()
}
AFFECT = np.array([CLASS_AFFECT[c] for c in CLASSES])  # (8, 2) in class order


def affect_of(probs: Sequence[float]) -> tuple[float, float]:
    """(valence, arousal) of a class distribution: the expectation of its classes' places."""
    v, a = np.asarray(probs, dtype=np.float64) @ AFFECT
    return float(v), float(a)


def distribution_of(valence: float, arousal: float, spread: float = 0.5) -> tuple[float, ...]:
    """A class distribution for a place in the affect space: a Gaussian kernel of width ``spread``
    around it over the classes' places (the nearer a class, the likelier)."""
    d2 = ((AFFECT - np.array([valence, arousal])) ** 2).sum(axis=1)
    weights = np.exp(-d2 / (2 * spread**2))
    out = mean_distribution([(weights / weights.sum()).tolist()])
    if out is None:  # pragma: no cover - one row always has a mean
        raise ValueError("no distribution")
    return out


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
