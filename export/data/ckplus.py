"""CK+: the extended Cohn-Kanade dataset (Lucey et al., 2010).

The original layout: ``cohn-kanade-images/S005/001/S005_001_00000001.png`` (each sequence goes from
neutral to the peak expression) and ``Emotion/S005/001/S005_001_00000011_emotion.txt`` holding the
sequence's label as a float (0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness,
7 surprise). The last ``peak_frames`` frames of a labelled sequence take its label and the first
frame is neutral. The "CK+48" redistribution (folders named ``anger/``, ``happy/``, ... of
``S010_004_00000017.png``) is read as well. Contempt has no product class and is left out (counted
in the log). The subject (``S005``) is the person for splitting.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP: dict[int, str | None] = {
    0: "neutral",
    1: "angry",
    2: None,  # contempt
    3: "disgust",
    4: "fearful",
    5: "happy",
    6: "sad",
    7: "surprised",
}
FOLDER_MAP: dict[str, str | None] = {
    "neutral": "neutral",
    "anger": "angry",
    "contempt": None,
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "happiness": "happy",
    "sadness": "sad",
    "surprise": "surprised",
}
_FRAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})$")


def _label(path: Path) -> int:
    try:
        value = float(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: expected one number (the CK+ emotion code): {exc}") from None
    if value not in {float(k) for k in LABEL_MAP}:
        raise DataError(f"{path}: emotion code {value} is not 0-7")
    return int(value)


def _scan_original(root: Path, peak_frames: int) -> tuple[list[Sample], int]:
    samples: list[Sample] = []
    skipped = 0
    for label_file in sorted((root / "Emotion").glob("S*/*/*_emotion.txt")):
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        frames = sorted((root / "cohn-kanade-images" / subject / sequence).glob("*.png"))
        if not frames:
            raise DataError(f"{label_file} has no frames under cohn-kanade-images/{subject}/{sequence}/")
        label = LABEL_MAP[_label(label_file)]
        if label is None:
            skipped += 1
            continue
        meta = {"sequence": sequence}
        samples.append(Sample("ckplus", subject, "neutral", "image", path=frames[0], meta=meta))
        for frame in frames[-peak_frames:]:
            if frame != frames[0]:
                samples.append(Sample("ckplus", subject, label, "image", path=frame, meta=meta))
    return samples, skipped


def _scan_folders(root: Path) -> tuple[list[Sample], int]:
    samples: list[Sample] = []
    skipped = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.lower() not in FOLDER_MAP:
            raise DataError(f"{folder}: unknown CK+ emotion folder; expected one of {sorted(FOLDER_MAP)}")
        label = FOLDER_MAP[folder.name.lower()]
        for frame in sorted(folder.glob("*.png")):
            match = _FRAME.match(frame.stem)
            if match is None:
                raise DataError(f"{frame}: expected a CK+ frame name like S010_004_00000017.png")
            if label is None:
                skipped += 1
                continue
            samples.append(
                Sample("ckplus", match.group(1), label, "image", path=frame, meta={"sequence": match.group(2)})
            )
    return samples, skipped


def scan(root: Path, *, peak_frames: int = 3) -> list[Sample]:
    if (root / "Emotion").is_dir() and (root / "cohn-kanade-images").is_dir():
        samples, skipped = _scan_original(root, peak_frames)
    elif root.is_dir():
        samples, skipped = _scan_folders(root)
    else:
        raise DataError(f"no CK+ data at {root}")
    if not samples:
        raise DataError(
            f"no labelled CK+ frames under {root} (expected Emotion/ and cohn-kanade-images/, or emotion folders)"
        )
    logger.info(
        "CK+ %s: %d frames from %d subjects (%d contempt items left out)",
        root,
        len(samples),
        len({s.speaker for s in samples}),
        skipped,
    )
    return samples
