"""Corpus loaders, label maps onto the product's classes, person-wise splits and model inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from export.data import arrays, ckplus, cremad, fer2013, ravdess, tess
from export.data.sample import Sample
from export.errors import DataError

CORPORA: dict[str, Callable[[Path], list[Sample]]] = {
    "ravdess": ravdess.scan,
    "cremad": cremad.scan,
    "tess": tess.scan,
    "fer2013": fer2013.scan,
    "ckplus": ckplus.scan,
    "arrays": arrays.scan,
}


def scan(corpus: str, path: Path) -> list[Sample]:
    """Items of ``corpus`` at ``path``.

    Raises:
        DataError: unknown corpus name, missing folder, or a file that breaks the corpus' layout.
    """
    if corpus not in CORPORA:
        raise DataError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    if not path.exists():
        raise DataError(f"{corpus} data not found at {path}")
    return CORPORA[corpus](path)


__all__ = ["CORPORA", "Sample", "scan"]
