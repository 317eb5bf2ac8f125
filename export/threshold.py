"""The disparity threshold fitted from clips whose disparity is known (``ClipRecord.disparate``), by
balanced accuracy under leave-speakers-out folds (see :mod:`export.fit`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clinic_signals.moments import moments
from contract.evaluation import ClipRecord
from export.folds import folds

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class ThresholdOutcome:
    threshold: float  # fitted on every clip
    start: float  # the room's
    before: float  # held-out balanced accuracy at the room's threshold
    after: float  # ... at thresholds fitted without each clip's speaker
    clips: int
    disparate: int  # of which truly disparate
    speakers: tuple[str, ...]


def _has_moment(r: ClipRecord, threshold: float, min_duration_s: float) -> bool:
    return moments(((w.start_s, w.end_s, w.disparity) for w in r.windows), threshold, min_duration_s) > 0


def balanced_accuracy(records: Sequence[ClipRecord], threshold: float, min_duration_s: float) -> float:
    """Mean of the share of disparate clips with a moment and of congruent clips without one."""
    shares = []
    for truth in (True, False):
        group = [r for r in records if r.disparate is truth]
        if group:
            shares.append(sum(_has_moment(r, threshold, min_duration_s) is truth for r in group) / len(group))
    return sum(shares) / len(shares) if shares else 0.0


def fit_threshold(records: Sequence[ClipRecord], start: float, min_duration_s: float) -> float:
    """The candidate threshold with the best balanced accuracy (ties: the one nearest the room's);
    the room's own when ``records`` lack either kind of clip."""
    if not any(r.disparate for r in records) or all(r.disparate for r in records):
        return start
    return max((*THRESHOLDS, start), key=lambda t: (balanced_accuracy(records, t, min_duration_s), -abs(t - start)))


def cross_validate_threshold(
    records: Sequence[ClipRecord], start: float, min_duration_s: float
) -> ThresholdOutcome | None:
    """Leave-speakers-out held-out balanced accuracy of the fitted threshold; None when the records
    cannot teach one (no clip with a known disparity, or only one kind, or one speaker)."""
    known = [r for r in records if r.disparate is not None]
    speakers = [r.speaker for r in known]
    if len(set(speakers)) < 2 or not any(r.disparate for r in known) or all(r.disparate for r in known):
        return None
    before: list[ClipRecord] = []
    after: list[tuple[ClipRecord, float]] = []
    for held in folds(speakers):
        train = [r for r in known if r.speaker not in held]
        threshold = fit_threshold(train, start, min_duration_s)
        for r in (r for r in known if r.speaker in held):
            before.append(r)
            after.append((r, threshold))

    def held_out(pairs: Sequence[tuple[ClipRecord, float]]) -> float:
        shares = []
        for truth in (True, False):
            group = [(r, t) for r, t in pairs if r.disparate is truth]
            shares.append(sum(_has_moment(r, t, min_duration_s) is truth for r, t in group) / len(group))
        return sum(shares) / 2

    return ThresholdOutcome(
        threshold=fit_threshold(known, start, min_duration_s),
        start=start,
        before=held_out([(r, start) for r in before]),
        after=held_out(after),
        clips=len(known),
        disparate=sum(1 for r in known if r.disparate),
        speakers=tuple(sorted(set(speakers))),
    )
