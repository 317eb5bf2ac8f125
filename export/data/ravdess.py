"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song (Livingstone & Russo, 2018).

Files sit in ``Actor_NN/`` folders and their name is seven two-digit fields,
``MM-VV-EE-II-SS-RR-AA.ext``: modality (01 audio-video, 02 video only, 03 audio only), vocal channel
(01 speech, 02 song), emotion (01 neutral ... 08 surprised, the product's own eight in order),
intensity (01 normal, 02 strong; neutral has only normal), statement (01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"), repetition (01, 02) and actor (01-24; odd male, even
female).
"""

from __future__ import annotations

import logging
from pathlib import Path

from contract.corpora import (
    RAVDESS_CHANNELS,
    RAVDESS_LABELS,
    RAVDESS_MODALITIES,
    RAVDESS_STATEMENTS,
    CorpusNameError,
    RavdessName,
    parse_ravdess,
)
from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP = RAVDESS_LABELS
MODALITIES = RAVDESS_MODALITIES
CHANNELS = RAVDESS_CHANNELS
STATEMENTS = RAVDESS_STATEMENTS


def parse_name(name: str) -> RavdessName:
    """Decode a RAVDESS file name (with or without extension) (:func:`contract.corpora.parse_ravdess`).

    Raises:
        DataError: the name is not seven known two-digit fields.
    """
    try:
        return parse_ravdess(name)
    except CorpusNameError as exc:
        raise DataError(str(exc)) from None


def scan(root: Path, *, include_song: bool = False) -> list[Sample]:
    """The audio-only speech clips (``03-01-*.wav``) of a RAVDESS folder; song too if asked.

    Video files (modalities 01 and 02) are recognised and left out: the speech models read sound.
    """
    files = sorted(root.glob("Actor_*/*.wav"))
    if not files:
        raise DataError(f"no RAVDESS audio under {root} (expected Actor_NN/03-01-EE-II-SS-RR-NN.wav)")
    samples = []
    for path in files:
        name = parse_name(path.name)
        if name.modality != "audio" or (name.channel == "song" and not include_song):
            continue
        if path.parent.name != f"Actor_{name.actor:02d}":
            raise DataError(f"{path}: actor {name.actor:02d} in the name but the folder is {path.parent.name}")
        samples.append(
            Sample(
                corpus="ravdess",
                speaker=f"{name.actor:02d}",
                label=name.emotion,
                kind="audio",
                path=path,
                meta={
                    "intensity": name.intensity,
                    "statement": name.statement,
                    "repetition": str(name.repetition),
                    "channel": name.channel,
                },
            )
        )
    logger.info("RAVDESS %s: %d clips from %d actors", root, len(samples), len({s.speaker for s in samples}))
    return samples
