"""Negation and intensifiers for the text channel: a rule-based valence tilts the text model's
distribution.

The zero-shot sentence model reads "I am not sad" close to "I am sad". VADER (Hutto and Gilbert
2014; the ``vaderSentiment`` wheel, MIT, ships its lexicon) scores a sentence's valence with rules for
negation ("not", "never", "n't"), intensifiers ("really", "so", "at all") and contrast ("but"). Its
compound score ``c`` in [-1, 1] multiplies each class's probability by ``exp(BETA * c * v)``, ``v``
the class's valence (:data:`contract.classes.CLASS_VALENCE`): a product of the two experts, so where
they agree the distribution barely moves and where negation flips the valence the classes on the
other side win. ``BETA`` was chosen on ``tests/data/therapy-tuning.tsv`` (16 sentences) and
measured on the held-out ``tests/data/therapy-sentences.tsv`` (64): see ``tests/test_text_emotion.py``
and docs/channels.md.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from contract.classes import CLASS_VALENCE, CLASSES
from edge.errors import ModelError

BETA = 4.0
VALENCE = np.array([CLASS_VALENCE[c] for c in CLASSES])


class _Analyzer(Protocol):
    def polarity_scores(self, text: str) -> dict[str, float]: ...


class RuleValence:
    """VADER's compound valence of a sentence (the lexicon is read once)."""

    def __init__(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: PLC0415
        except ImportError as exc:
            raise ModelError(f"the words channel needs vaderSentiment (pip install vadersentiment): {exc}") from None
        self._analyzer: _Analyzer = SentimentIntensityAnalyzer()

    def __call__(self, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])


def tilt(probs: npt.NDArray[np.float32], compound: float, beta: float = BETA) -> npt.NDArray[np.float32]:
    """``probs`` (classes last) weighed by the rule-based valence ``compound``."""
    weighted = probs.astype(np.float64) * np.exp(beta * compound * VALENCE)
    out: npt.NDArray[np.float32] = (weighted / weighted.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out
