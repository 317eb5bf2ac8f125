"""The affect space every channel shares: (valence, arousal) on Russell's circumplex.

The face and the words give a class distribution, placed in the space by the expectation of their
classes' places (:data:`contract.classes.CLASS_AFFECT`); the voice gives its cues' valence and arousal
against the speaker's baseline. The window's affect is the channels' weighted mean (the fusion's
weights times each channel's reliability, and for a distribution the share of it that is not
neutral: :meth:`edge.fusion.decide.WindowFusion.affect`).

**Calm.** The face model has no calm class (FER-2013 has none), so calm could never be the answer:
low arousal with non-negative valence while the distribution's top class is neutral turns neutral
into calm, in proportion to how low the arousal is (none at ``CALM_FROM`` or above, all of it at
``CALM_FULL`` or below).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from contract.classes import CLASSES
from edge.fusion.late import Probs

CALM_FROM = -0.1  # arousal above this is not calm
CALM_FULL = -0.5  # at or below this, all of neutral's probability becomes calm's
NEUTRAL, CALM = CLASSES.index("neutral"), CLASSES.index("calm")


def mean_affect(affect: Mapping[str, tuple[float, float]], weights: Mapping[str, float]) -> tuple[float, float] | None:
    """The weighted mean of the channels' (valence, arousal); the plain mean when every weight is 0
    (a wholly neutral face is at the centre); None without a channel."""
    if not affect:
        return None
    w = np.array([max(weights.get(n, 0.0), 0.0) for n in affect])
    if w.sum() <= 0:
        w = np.ones(len(affect))
    points = np.array(list(affect.values()), dtype=np.float64)
    v, a = (w[:, None] * points).sum(axis=0) / w.sum()
    return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))


def calm(probs: Probs, valence: float, arousal: float) -> Probs:
    """``probs`` with neutral turned into calm where the affect is calm (see the module)."""
    if valence < 0 or arousal >= CALM_FROM or int(np.argmax(probs)) != NEUTRAL:
        return probs
    share = min(1.0, (CALM_FROM - arousal) / (CALM_FROM - CALM_FULL))
    out = np.array(probs, dtype=np.float64)
    moved = out[NEUTRAL] * share
    out[NEUTRAL] -= moved
    out[CALM] += moved
    return out
