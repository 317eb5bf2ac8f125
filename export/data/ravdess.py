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
from dataclasses import dataclass
from pathlib import Path

from contract.classes import CLASSES
from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP: dict[str, str] = {f"{i + 1:02d}": name for i, name in enumerate(CLASSES)}
MODALITIES = {"01": "audio-video", "02": "video", "03": "audio"}
CHANNELS = {"01": "speech", "02": "song"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


@dataclass(frozen=True)
class RavdessName:
    modality: str
    channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: int
    actor: int


def parse_name(name: str) -> RavdessName:
    """Decode a RAVDESS file name (with or without extension).

    Raises:
        DataError: the name is not seven known two-digit fields.
    """
    stem = name.split(".", 1)[0]
    fields = stem.split("-")
    if len(fields) != 7 or not all(len(f) == 2 and f.isdigit() for f in fields):
        raise DataError(f"not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA, seven 2-digit fields): {name!r}")
    modality, channel, emotion, intensity, statement, repetition, actor = fields
    problems = [
        what
        for what, ok in (
            (f"modality {modality}", modality in MODALITIES),
            (f"vocal channel {channel}", channel in CHANNELS),
            (f"emotion {emotion}", emotion in LABEL_MAP),
            (f"intensity {intensity}", intensity in {"01", "02"}),
            (f"statement {statement}", statement in STATEMENTS),
            (f"repetition {repetition}", repetition in {"01", "02"}),
            (f"actor {actor}", 1 <= int(actor) <= 24),
        )
        if not ok
    ]
    if problems:
        raise DataError(f"RAVDESS file name {name!r} has unknown codes: {', '.join(problems)}")
    return RavdessName(
        modality=MODALITIES[modality],
        channel=CHANNELS[channel],
        emotion=LABEL_MAP[emotion],
        intensity="strong" if intensity == "02" else "normal",
        statement=STATEMENTS[statement],
        repetition=int(repetition),
        actor=int(actor),
    )


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
