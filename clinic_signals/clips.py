"""One prediction per clip from a room's window outputs: the clip-level aggregation that
``clinic-edge evaluate`` scores and ``clinic-export fit`` optimises.

For a channel: the mean of its distributions over the clip's windows where its vote was ``good``;
the clip's class is that mean's top class and its confidence that class's probability. A clip
where the channel was never good has no prediction (the channel abstained: coverage). For the
fused result the same over the windows that have a fused distribution (whatever their state: an
uncertain window still says which classes it leans to). Windows count equally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from contract.evaluation import WindowRecord

FUSED = "fused"


def mean_of(distributions: Iterable[Sequence[float]]) -> tuple[int, float] | None:
    """The top class of the mean distribution and its probability, or None for no distribution."""
    rows = [np.asarray(d, dtype=np.float64) for d in distributions]
    if not rows:
        return None
    mean = np.mean(rows, axis=0)
    mean = mean / mean.sum() if mean.sum() > 0 else mean
    best = int(np.argmax(mean))
    return best, float(mean[best])


def clip_prediction(windows: Sequence[WindowRecord], predictor: str) -> tuple[int, float] | None:
    """The clip's class and confidence from ``predictor`` (a channel's name, or :data:`FUSED`)."""
    if predictor == FUSED:
        return mean_of(w.fused for w in windows if w.fused is not None)
    return mean_of(v.probs for w in windows for v in w.votes if v.name == predictor and v.quality == "good" and v.probs)
