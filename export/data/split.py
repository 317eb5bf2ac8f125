"""Splits by person: nobody appears in two of train, validation and test."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from export.data.sample import Sample, Split
from export.errors import DataError

logger = logging.getLogger(__name__)


def split_by_person(
    samples: Sequence[Sample], *, val_fraction: float, test_fraction: float, seed: int
) -> dict[Split, list[Sample]]:
    """Assign whole persons to splits, in a shuffled order fixed by ``seed``.

    Items whose corpus has its own split and no identities (FER2013) keep that split. Otherwise
    persons are shuffled and the first ones fill test, the next validation, the rest train, each
    split taking at least one person; fractions are of persons, not items.

    Raises:
        DataError: fewer than three persons to share out, or a split ends up empty.
    """
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(
            f"split fractions must be in (0, 1) and sum below 1; got val {val_fraction}, test {test_fraction}"
        )
    out: dict[Split, list[Sample]] = {"train": [], "val": [], "test": []}
    by_person: dict[str, list[Sample]] = {}
    for sample in samples:
        if sample.preset_split is not None:
            out[sample.preset_split].append(sample)
        else:
            by_person.setdefault(sample.person, []).append(sample)
    persons = sorted(by_person)
    if persons:
        if len(persons) < 3:
            raise DataError(
                f"only {len(persons)} person(s) ({', '.join(persons)}): a split by person needs at least 3; "
                "add another corpus"
            )
        order = [persons[i] for i in np.random.default_rng(seed).permutation(len(persons))]
        n_test = max(1, round(test_fraction * len(order)))
        n_val = max(1, round(val_fraction * len(order)))
        n_val = min(n_val, len(order) - n_test - 1)
        groups: dict[Split, list[str]] = {
            "test": order[:n_test],
            "val": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }
        for split, members in groups.items():
            for person in members:
                out[split].extend(by_person[person])
            logger.info("%s: %d persons, %d items", split, len(members), len(out[split]))
    empty = [name for name, items in out.items() if not items]
    if empty:
        raise DataError(f"split(s) {empty} are empty; give more data or other fractions")
    return out
