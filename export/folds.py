"""Speaker folds for leave-speakers-out cross-validation: no speaker on both sides."""

from __future__ import annotations

from collections.abc import Sequence

FOLDS = 5


def folds(speakers: Sequence[str], k: int = FOLDS) -> list[set[str]]:
    """Speakers dealt into ``k`` folds (at most one per speaker), in a fixed order."""
    unique = sorted(set(speakers))
    k = max(2, min(k, len(unique)))
    return [set(unique[i::k]) for i in range(k)]
