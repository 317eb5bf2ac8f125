"""TESS: Toronto Emotional Speech Set (Dupuis & Pichora-Fuller, 2010).

Two speakers (``OAF`` older, ``YAF`` younger), 200 target words each in the carrier phrase "Say the
word ...", seven emotions. Folders are ``OAF_angry/OAF_back_angry.wav``; the pleasant-surprise
folder is spelt ``..._Pleasant_surprise`` or ``..._pleasant_surprised`` and its files end ``_ps``.
With two speakers, TESS fills one split per speaker; combine it with another corpus to have all
three.
"""

from __future__ import annotations

import logging
from pathlib import Path

from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "sad": "sad",
}
SPEAKERS = ("OAF", "YAF")


def scan(root: Path) -> list[Sample]:
    files = sorted(p for p in root.rglob("*.wav") if p.stem.split("_", 1)[0].upper() in SPEAKERS)
    if not files:
        raise DataError(f"no TESS audio under {root} (expected OAF_angry/OAF_back_angry.wav)")
    samples = []
    for path in files:
        parts = path.stem.split("_")
        if len(parts) < 3 or parts[-1].lower() not in LABEL_MAP:
            raise DataError(f"not a TESS file name (SPEAKER_word_emotion.wav): {path.name!r}")
        speaker, word, emotion = parts[0].upper(), "_".join(parts[1:-1]), parts[-1].lower()
        samples.append(
            Sample(
                corpus="tess", speaker=speaker, label=LABEL_MAP[emotion], kind="audio", path=path, meta={"word": word}
            )
        )
    logger.info("TESS %s: %d clips", root, len(samples))
    return samples
