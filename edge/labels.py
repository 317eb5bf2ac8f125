"""The product's emotion classes (RAVDESS's eight, in its order)."""

from __future__ import annotations

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
