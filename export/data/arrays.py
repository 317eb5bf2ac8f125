"""Prepared feature arrays (``.npz``): landmark geometry, rPPG signals, modality embeddings.

Keys: ``x`` ``(N, ...)`` float features, ``labels`` ``(N,)`` product class names, ``speakers``
``(N,)`` person identities, and for fusion heads ``present`` ``(N, M)`` with 1 where the modality was
seen. Arrays are produced by the room's own extractors, so training sees what the room computes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from contract.classes import CLASSES
from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)


def scan(root: Path) -> list[Sample]:
    try:
        with np.load(root, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read feature arrays {root}: {exc}") from None
    missing = {"x", "labels", "speakers"} - arrays.keys()
    if missing:
        raise DataError(f"{root}: keys {sorted(missing)} missing; found {sorted(arrays)}")
    x, labels, speakers = arrays["x"], arrays["labels"].astype(str), arrays["speakers"].astype(str)
    present = arrays.get("present")
    count = x.shape[0]
    if labels.shape != (count,) or speakers.shape != (count,) or (present is not None and present.shape[0] != count):
        raise DataError(f"{root}: x has {count} rows but labels/speakers/present do not match it")
    unknown = sorted(set(labels) - set(CLASSES))
    if unknown:
        raise DataError(f"{root}: labels {unknown} are not product classes {list(CLASSES)}")
    samples = [
        Sample(
            corpus="arrays",
            speaker=str(speakers[i]),
            label=str(labels[i]),
            kind="array",
            data=x[i].astype(np.float32),
            present=None if present is None else present[i].astype(np.float32),
        )
        for i in range(count)
    ]
    logger.info("arrays %s: %d items of shape %s", root, count, x.shape[1:])
    return samples
