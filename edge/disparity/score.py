"""Disparity between channels, per window, and the events it makes when it persists.

Each good channel gives a valence in [-1, 1] (:meth:`edge.channels.base.Channel.valence`): a class
distribution through the valence of each class (``contract.classes.CLASS_VALENCE``, the circumplex
positions used in the product: happy +1, calm +0.5, surprised +0.2, neutral 0, sad, angry, fearful
and disgust -1), the acoustic voice channel through its own valence against the speaker's baseline
(weaker evidence, scaled by half). Two channels disagree when
they point in opposite directions: a pair's disagreement is ``max(0, -v1 * v2)``, so a fully
positive face with fully negative words scores 1, a happy face with neutral words 0, and mild
signals little. The window's score is its most disagreeing pair's, in [0, 1]. With fewer than two
good channels there is no score. A run of windows whose score stays at or above ``disparity.threshold`` becomes an event
once it has lasted ``disparity.min_duration_s``; the event ends with the first window below it (or
the session) and is stored and published with its times, peak and mean score and the channels
that disagreed most.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np

from clinic_signals.moments import MomentRule
from edge.results import Disparity, DisparityEvent


def disparity(valences: Mapping[str, float]) -> Disparity | None:
    """The window's score from each good channel's valence (:meth:`ChannelRegistry.valences`)."""
    v = dict(valences)
    if len(v) < 2:
        return None
    gaps = {(a, b): max(0.0, -v[a] * v[b]) for a, b in combinations(v, 2)}
    pair = max(gaps, key=lambda k: gaps[k])
    return Disparity(round(gaps[pair], 4), pair, {k: round(x, 4) for k, x in v.items()})


class DisparityTracker:
    """Turns per-window scores into events (:class:`clinic_signals.moments.MomentRule`); one per session."""

    def __init__(self, threshold: float, min_duration_s: float) -> None:
        self.threshold = threshold
        self.min_duration_s = min_duration_s
        self._rule: MomentRule[Disparity | None] = MomentRule(threshold, min_duration_s)

    def add(self, start_s: float, end_s: float, score: Disparity | None) -> DisparityEvent | None:
        """Feed one window; returns an event when a long enough run has just ended."""
        return _event(self._rule.add(start_s, end_s, None if score is None else score.score, score))

    def close(self) -> DisparityEvent | None:
        return _event(self._rule.close())


def _event(run: list[tuple[float, float, Disparity | None]] | None) -> DisparityEvent | None:
    if not run:
        return None
    scored = [(start, end, d) for start, end, d in run if d is not None]
    scores = [d.score for _, _, d in scored]
    peak = max(scored, key=lambda r: r[2].score)[2]
    return DisparityEvent(
        start_s=run[0][0],
        end_s=run[-1][1],
        peak=round(max(scores), 4),
        mean=round(float(np.mean(scores)), 4),
        windows=len(run),
        pair=peak.pair,
    )
