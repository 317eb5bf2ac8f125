"""Training configuration, validated once when ``clinic-export train`` starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from export.models.registry import ModelSpec

Corpus = Literal["ravdess", "cremad", "tess", "fer2013", "ckplus", "arrays"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Strict):
    corpus: Corpus
    path: Path


class TrainConfig(_Strict):
    model: ModelSpec
    data: tuple[DataSource, ...] = Field(min_length=1)
    out: Path = Field(description="Run folder: checkpoints, report, held-out and calibration arrays.")
    epochs: int = Field(default=30, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=4096)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    patience: int = Field(default=6, ge=1, description="Epochs without a better validation macro-F1 before stopping.")
    seed: int = Field(default=0, ge=0)
    val_fraction: float = Field(default=0.15, gt=0, lt=1)
    test_fraction: float = Field(default=0.15, gt=0, lt=1)
    calibration_items: int = Field(default=256, ge=8, description="Training items kept for INT8 calibration.")
    modality_dropout: float = Field(
        default=0.3, ge=0, lt=1, description="Fusion heads: chance of hiding each modality of a training item."
    )
    threads: int = Field(default=0, ge=0, le=256, description="CPU threads for PyTorch; 0 = library default.")
