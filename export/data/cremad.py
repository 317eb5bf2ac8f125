"""CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al., 2014).

Audio clips are ``AudioWAV/AAAA_SSS_EEE_LL.wav``: actor id (1001-1091), sentence code (``IEO``,
``TIE``, ...), emotion (``ANG``, ``DIS``, ``FEA``, ``HAP``, ``NEU``, ``SAD``) and level (``LO``,
``MD``, ``HI``, ``XX`` unspecified). Six emotions: it has no *calm* and no *surprised*.
"""

from __future__ import annotations

import logging
from pathlib import Path

from contract.corpora import CREMAD_LABELS, CREMAD_LEVELS, CorpusNameError, parse_cremad
from export.data.sample import Sample
from export.errors import DataError

logger = logging.getLogger(__name__)

LABEL_MAP = CREMAD_LABELS
LEVELS = CREMAD_LEVELS


def scan(root: Path) -> list[Sample]:
    folder = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise DataError(f"no CREMA-D audio under {root} (expected AudioWAV/1001_DFA_ANG_XX.wav)")
    samples = []
    for path in files:
        try:
            name = parse_cremad(path.stem)
        except CorpusNameError as exc:
            raise DataError(str(exc)) from None
        samples.append(
            Sample(
                corpus="cremad",
                speaker=name.actor,
                label=name.emotion,
                kind="audio",
                path=path,
                meta={"sentence": name.sentence, "level": name.level},
            )
        )
    logger.info("CREMA-D %s: %d clips from %d actors", root, len(samples), len({s.speaker for s in samples}))
    return samples
