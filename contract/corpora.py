"""The emotion corpora's file names, read the same way by the toolchain (training) and the room
(``clinic-edge evaluate``): what a name says about the clip's emotion, speaker and recording.

* RAVDESS (Livingstone & Russo, 2018): ``Actor_NN/MM-VV-EE-II-SS-RR-AA.ext``: modality (01 audio-video,
  02 video only, 03 audio only), vocal channel (01 speech, 02 song), emotion (01 neutral ... 08
  surprised: the product's own eight, in order), intensity (01 normal, 02 strong), statement (01 "Kids
  are talking by the door", 02 "Dogs are sitting by the door"), repetition, actor (01-24).
* CREMA-D (Cao et al., 2014): ``AAAA_SSS_EEE_LL``: actor (1001-1091), one of twelve sentences, emotion
  (``ANG``, ``DIS``, ``FEA``, ``HAP``, ``NEU``, ``SAD``: no calm, no surprised), level (``LO``, ``MD``,
  ``HI``, ``XX`` unspecified).

Both corpora's sentences are emotionally neutral by design: their words carry no emotion signal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contract.classes import CLASSES


class CorpusNameError(ValueError):
    """A file name that is not the corpus's (the message names the file and what was expected)."""


RAVDESS_LABELS: dict[str, str] = {f"{i + 1:02d}": name for i, name in enumerate(CLASSES)}
RAVDESS_MODALITIES = {"01": "audio-video", "02": "video", "03": "audio"}
RAVDESS_CHANNELS = {"01": "speech", "02": "song"}
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


@dataclass(frozen=True)
class RavdessName:
    modality: str
    channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: int
    actor: int


def parse_ravdess(name: str) -> RavdessName:
    """Decode a RAVDESS file name (with or without extension).

    Raises:
        CorpusNameError: the name is not seven known two-digit fields.
    """
    stem = name.split(".", 1)[0]
    fields = stem.split("-")
    if len(fields) != 7 or not all(len(f) == 2 and f.isdigit() for f in fields):
        raise CorpusNameError(
            f"not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA, seven 2-digit fields): {name!r}"
        )
    modality, channel, emotion, intensity, statement, repetition, actor = fields
    problems = [
        what
        for what, ok in (
            (f"modality {modality}", modality in RAVDESS_MODALITIES),
            (f"vocal channel {channel}", channel in RAVDESS_CHANNELS),
            (f"emotion {emotion}", emotion in RAVDESS_LABELS),
            (f"intensity {intensity}", intensity in {"01", "02"}),
            (f"statement {statement}", statement in RAVDESS_STATEMENTS),
            (f"repetition {repetition}", repetition in {"01", "02"}),
            (f"actor {actor}", 1 <= int(actor) <= 24),
        )
        if not ok
    ]
    if problems:
        raise CorpusNameError(f"RAVDESS file name {name!r} has unknown codes: {', '.join(problems)}")
    return RavdessName(
        modality=RAVDESS_MODALITIES[modality],
        channel=RAVDESS_CHANNELS[channel],
        emotion=RAVDESS_LABELS[emotion],
        intensity="strong" if intensity == "02" else "normal",
        statement=RAVDESS_STATEMENTS[statement],
        repetition=int(repetition),
        actor=int(actor),
    )


CREMAD_LABELS: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
CREMAD_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
CREMAD_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
_CREMAD = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


@dataclass(frozen=True)
class CremadName:
    actor: str
    sentence: str
    emotion: str
    level: str


def parse_cremad(stem: str, suffix: str = ".wav") -> CremadName:
    """Decode a CREMA-D file name's stem.

    Raises:
        CorpusNameError: not ``ActorID_Sentence_Emotion_Level``.
    """
    match = _CREMAD.match(stem)
    if match is None or match.group(3) not in CREMAD_LABELS or match.group(4) not in CREMAD_LEVELS:
        raise CorpusNameError(f"not a CREMA-D file name (ActorID_Sentence_Emotion_Level{suffix}): {stem + suffix!r}")
    actor, sentence, emotion, level = match.groups()
    return CremadName(actor, sentence, CREMAD_LABELS[emotion], CREMAD_LEVELS[level])
