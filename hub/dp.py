"""Differentially private releases (``privacy.mode = "dp"``), with OpenDP's Laplace mechanism.

A release of one period is one measurement over the period's sessions. Each session adds to three
cells (the clinic, its site, its room); per cell the release holds a session count and the sum of
the sessions' emotion distributions (each session's mean class probabilities, a vector summing to
1). Adding or removing one session changes, per cell, the count by 1 and the vector sum by at most
1 in L1 norm: an L1 sensitivity of 2 per level and 6 over the three levels. Laplace noise of scale
``6 / epsilon`` on every number makes the release epsilon-differentially private for each session
(add/remove neighbours), whatever anyone knows or has seen, and whatever they subtract.

Every grain is released separately, so a session's total privacy loss is ``epsilon`` times the
number of grains offered (day, week and month: 3 epsilon). A period is released once: late data
after the coarsest release is not revised in this mode (a revision would spend epsilon again).

What is shown is post-processing of the noisy numbers, which costs nothing more: counts below k
are held back, shares are the noisy sums clamped at zero and normalised. Hours, face coverage,
voiced share and quality flags are not released in this mode (each would need more of the budget).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import opendp.prelude as dp

from contract.classes import CLASSES

logger = logging.getLogger(__name__)

dp.enable_features("contrib")

LEVELS = 3  # clinic, site, room: every session is in one cell of each
SENSITIVITY_PER_LEVEL = 2.0  # count (1) + the emotion distribution's L1 norm (1)
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Noise:
    """The noise one release adds, and what it means for a reader."""

    epsilon: float

    @property
    def scale(self) -> float:
        return LEVELS * SENSITIVITY_PER_LEVEL / self.epsilon

    def count_error(self) -> float:
        """Half-width of the interval that holds a count's noise with 95 % probability."""
        return float(dp.discrete_laplacian_scale_to_accuracy(self.scale, 1 - CONFIDENCE))

    def share_error(self, sessions: int) -> float:
        """About how far (95 %) a class share of a cell of ``sessions`` sessions may be off, as a fraction."""
        return float(dp.laplacian_scale_to_accuracy(self.scale, 1 - CONFIDENCE)) / max(sessions, 1)


@dataclass(frozen=True)
class Totals:
    """One cell's true numbers, before noise."""

    sessions: int
    shares: Sequence[float]  # the sum of the sessions' distributions, per class


@dataclass(frozen=True)
class Noisy:
    sessions: int
    shares: list[float]  # noisy sums, clamped at zero


def _mechanisms(noise: Noise) -> tuple[dp.Measurement, dp.Measurement]:
    counts = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=noise.scale)
    sums = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float), scale=noise.scale
    )
    return counts, sums


def spent(noise: Noise) -> float:
    """The epsilon one release spends per session, as OpenDP's privacy maps account it: one session
    moves each of the three levels' counts by 1 and distribution sums by 1 (L1)."""
    counts, sums = _mechanisms(noise)
    return float(counts.map(LEVELS)) + float(sums.map(float(LEVELS)))  # type: ignore[no-untyped-call]


def measure(cells: Sequence[Totals], noise: Noise) -> list[Noisy]:
    """The release's numbers with Laplace noise of ``noise.scale`` on each (OpenDP's samplers)."""
    if not cells:
        return []
    counts, sums = _mechanisms(noise)
    noisy_counts = counts([c.sessions for c in cells])
    flat = sums([float(v) for c in cells for v in c.shares])
    n = len(CLASSES)
    return [
        Noisy(max(int(noisy_counts[i]), 0), [max(float(v), 0.0) for v in flat[i * n : (i + 1) * n]])
        for i in range(len(cells))
    ]
