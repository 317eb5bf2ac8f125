"""When disparity becomes a moment: a run of windows whose score stays at or above the threshold,
lasting at least ``min_duration_s`` (from the first window's start to the last one's end). The room
(:class:`edge.disparity.score.DisparityTracker`), ``clinic-edge evaluate`` and ``clinic-export fit``
(which replays stored window scores at other thresholds) share this one rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class MomentRule(Generic[T]):
    """Feeds windows in order; hands back each finished run long enough to be a moment.

    ``T`` is whatever the caller keeps per window (the room keeps its disparity, fit nothing)."""

    threshold: float
    min_duration_s: float
    _run: list[tuple[float, float, T]] = field(default_factory=list)

    def add(self, start_s: float, end_s: float, score: float | None, item: T) -> list[tuple[float, float, T]] | None:
        """One window; the windows of a moment that has just ended (with this window below threshold)."""
        if score is not None and score >= self.threshold:
            self._run.append((start_s, end_s, item))
            return None
        return self.close()

    def close(self) -> list[tuple[float, float, T]] | None:
        """The run in progress, if it lasted long enough (the session or clip has ended)."""
        run, self._run = self._run, []
        if not run or run[-1][1] - run[0][0] < self.min_duration_s:
            return None
        return run


def moments(windows: Iterable[tuple[float, float, float | None]], threshold: float, min_duration_s: float) -> int:
    """How many moments windows ``(start_s, end_s, score)``, in order, make."""
    rule: MomentRule[None] = MomentRule(threshold, min_duration_s)
    found = sum(1 for start, end, score in windows if rule.add(start, end, score, None) is not None)
    return found + (rule.close() is not None)
