"""One labelled item of a corpus, before feature extraction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Kind = Literal["audio", "image", "array"]
Split = Literal["train", "val", "test"]


@dataclass(frozen=True)
class Sample:
    """A labelled item.

    Attributes:
        corpus: the corpus it came from (``ravdess``, ``cremad``, ...).
        speaker: the person it shows or voices, unique within the corpus; splits keep each person
            in one split.
        label: one of the product's eight classes.
        kind: what the item holds: a sound file, an image (file or pixels), or a prepared array.
        path: the file, for file-backed items.
        data: the item itself when it is held in memory: grey pixels of corpora that ship images
            in a table (FER2013), or a prepared feature array.
        present: for fusion items, which modalities the item has (1/0 per modality).
        preset_split: the corpus' own split, for corpora that have no person identities.
        meta: what the corpus' naming says about the item (intensity, statement, ...).
    """

    corpus: str
    speaker: str
    label: str
    kind: Kind
    path: Path | None = None
    data: npt.NDArray[np.generic] | None = None
    present: npt.NDArray[np.float32] | None = None
    preset_split: Split | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def person(self) -> str:
        """Identity used for splitting: the speaker, qualified by corpus."""
        return f"{self.corpus}:{self.speaker}"
