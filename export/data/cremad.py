"""CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al., 2014).

Audio clips are ``AudioWAV/AAAA_SSS_EEE_LL.wav``: actor id (1001-1091), sentence code (``IEO``,
``TIE``, ...), emotion (``ANG``, ``DIS``, ``FEA``, ``HAP``, ``NEU``, ``SAD``) and level (``LO``,
``MD``, ``HI``, ``XX`` unspecified). Six emotions: it has no *calm* and no *surprised*.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def scan(root: Path) -> list[Sample]:
    folder = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise DataError(f"no CREMA-D audio under {root} (expected AudioWAV/1001_DFA_ANG_XX.wav)")
    samples = []
    for path in files:
        match = _NAME.match(path.stem)
        if match is None or match.group(3) not in LABEL_MAP or match.group(4) not in LEVELS:
            raise DataError(f"not a CREMA-D file name (ActorID_Sentence_Emotion_Level.wav): {path.name!r}")
        actor, sentence, emotion, level = match.groups()
        samples.append(
            Sample(
                corpus="cremad",
                speaker=actor,
                label=LABEL_MAP[emotion],
                kind="audio",
                path=path,
                meta={"sentence": sentence, "level": LEVELS[level]},
            )
        )
    logger.info("CREMA-D %s: %d clips from %d actors", root, len(samples), len({s.speaker for s in samples}))
    return samples
