"""FER2013 (Goodfellow et al., 2013) as its CSV: ``emotion,pixels,Usage``.

``emotion`` is 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral; ``pixels`` is
2304 space-separated grey values of a 48x48 face; ``Usage`` is ``Training``, ``PublicTest`` or
``PrivateTest``. The faces carry no identity, so FER2013 cannot be split by person: its own split is
kept (Training -> train, PublicTest -> val, PrivateTest -> test), as everyone who reports on it does.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from export.data.sample import Sample, Split
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP: dict[str, str] = {
    "0": "angry",
    "1": "disgust",
    "2": "fearful",
    "3": "happy",
    "4": "sad",
    "5": "surprised",
    "6": "neutral",
}
USAGE: dict[str, Split] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48


def scan(root: Path) -> list[Sample]:
    """Rows of ``fer2013.csv`` (``root`` is the file or its folder)."""
    path = root / "fer2013.csv" if root.is_dir() else root
    if not path.is_file():
        raise DataError(f"no FER2013 CSV at {path} (expected fer2013.csv with emotion,pixels,Usage)")
    samples = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = {(name or "").strip(): name for name in reader.fieldnames or []}
        missing = {"emotion", "pixels", "Usage"} - fields.keys()
        if missing:
            raise DataError(f"{path}: columns {sorted(missing)} missing; found {sorted(fields)}")
        for line, row in enumerate(reader, start=2):
            emotion = row[fields["emotion"]].strip()
            usage = row[fields["Usage"]].strip()
            try:
                pixels = np.array(row[fields["pixels"]].split(), dtype=np.uint8)
            except ValueError as exc:
                raise DataError(f"{path}:{line}: pixels are not 0-255 integers ({exc})") from None
            if emotion not in LABEL_MAP or usage not in USAGE or pixels.size != SIDE * SIDE:
                raise DataError(
                    f"{path}:{line}: expected emotion 0-6, Usage in {sorted(USAGE)} and {SIDE * SIDE} pixels; "
                    f"got emotion={emotion!r}, Usage={usage!r}, {pixels.size} pixels"
                )
            samples.append(
                Sample(
                    corpus="fer2013",
                    speaker=f"row{line}",
                    label=LABEL_MAP[emotion],
                    kind="image",
                    data=pixels.reshape(SIDE, SIDE),
                    preset_split=USAGE[usage],
                )
            )
    logger.info("FER2013 %s: %d faces", path, len(samples))
    return samples
