"""Model specifications: the configurable architectures ``clinic-export train`` builds.

A specification is validated once (pydantic, ``extra="forbid"``), stored inside every checkpoint
and manifest, and is all that is needed to rebuild the network and to describe its ONNX inputs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from contract.audio import SAMPLE_RATE
from export.models.face_cnn import FaceCNN
from export.models.fusion import EarlyFusion, HybridFusion, LateFusion
from export.models.physio import LandmarkMLP, RppgCNN1D
from export.models.speech import SpeechCNN1D, SpeechCNN2D

NUM_CLASSES = 8
HOP_S = 0.010
WIN_S = 0.025


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaceCNNSpec(_Spec):
    architecture: Literal["face-cnn"] = "face-cnn"
    size: int = Field(default=64, ge=32, le=224, description="Side of the aligned grey face crop, pixels.")
    channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    dense: int = Field(default=256, ge=8)
    dropout: float = Field(default=0.25, ge=0.0, lt=1.0)


class _AudioSpec(_Spec):
    window_s: float = Field(default=2.5, gt=0.2, le=10.0, description="Clip length the model is trained on.")

    @property
    def frames(self) -> int:
        """Feature frames in a window (25 ms windows every 10 ms, as ``clinic_signals.audio``)."""
        samples = round(self.window_s * SAMPLE_RATE)
        return 1 + (samples - round(WIN_S * SAMPLE_RATE)) // round(HOP_S * SAMPLE_RATE)


class SpeechCNN1DSpec(_AudioSpec):
    architecture: Literal["speech-cnn1d"] = "speech-cnn1d"
    n_mels: int = Field(default=64, ge=16, le=256)
    n_mfcc: int = Field(default=40, ge=8, le=128)
    channels: tuple[int, ...] = (64, 128, 128)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)

    @property
    def in_channels(self) -> int:
        return self.n_mfcc + 12 + self.n_mels + 2

    @model_validator(mode="after")
    def _mfcc_within_mels(self) -> SpeechCNN1DSpec:
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})")
        return self


class SpeechCNN2DSpec(_AudioSpec):
    architecture: Literal["speech-cnn2d"] = "speech-cnn2d"
    n_mels: int = Field(default=128, ge=16, le=256)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)


class LandmarkMLPSpec(_Spec):
    architecture: Literal["landmark-mlp"] = "landmark-mlp"
    in_features: int = Field(default=136, ge=2)
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)


class RppgCNNSpec(_Spec):
    architecture: Literal["rppg-cnn1d"] = "rppg-cnn1d"
    in_channels: int = Field(default=1, ge=1, le=8)
    samples: int = Field(default=75, ge=16, description="Signal length per window (2.5 s at 30 fps = 75).")
    channels: tuple[int, ...] = (16, 32, 64)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)


class FusionSpec(_Spec):
    architecture: Literal["fusion-late", "fusion-early", "fusion-hybrid"]
    modalities: tuple[str, ...] = Field(min_length=1, description="Modality names, in input order.")
    dims: tuple[int, ...] = Field(min_length=1, description="Embedding width of each modality.")
    width: int = Field(default=64, ge=4, description="Shared width (hybrid) or hidden width (early).")
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_dim_per_modality(self) -> FusionSpec:
        if len(self.modalities) != len(self.dims):
            raise ValueError(f"{len(self.modalities)} modalities but {len(self.dims)} dims; give one width each")
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modality names repeat: {list(self.modalities)}")
        return self


AnySpec = FaceCNNSpec | SpeechCNN1DSpec | SpeechCNN2DSpec | LandmarkMLPSpec | RppgCNNSpec | FusionSpec
ModelSpec = Annotated[AnySpec, Field(discriminator="architecture")]
ARCHITECTURES: tuple[str, ...] = (
    "face-cnn",
    "speech-cnn1d",
    "speech-cnn2d",
    "landmark-mlp",
    "rppg-cnn1d",
    "fusion-late",
    "fusion-early",
    "fusion-hybrid",
)


class SpecHolder(BaseModel):
    """Parses a specification dict into the right class."""

    model_config = ConfigDict(extra="forbid")
    spec: ModelSpec


def parse_spec(raw: dict[str, object]) -> AnySpec:
    return SpecHolder.model_validate({"spec": raw}).spec


def build_model(spec: AnySpec) -> nn.Module:  # noqa: PLR0911 - one return per architecture
    """A freshly initialised network for ``spec``."""
    if isinstance(spec, FaceCNNSpec):
        return FaceCNN(NUM_CLASSES, 1, spec.channels, spec.dense, spec.dropout)
    if isinstance(spec, SpeechCNN1DSpec):
        return SpeechCNN1D(NUM_CLASSES, spec.in_channels, spec.channels, spec.dropout)
    if isinstance(spec, SpeechCNN2DSpec):
        return SpeechCNN2D(NUM_CLASSES, spec.n_mels, spec.channels, spec.dropout)
    if isinstance(spec, LandmarkMLPSpec):
        return LandmarkMLP(NUM_CLASSES, spec.in_features, spec.hidden, spec.dropout)
    if isinstance(spec, RppgCNNSpec):
        return RppgCNN1D(NUM_CLASSES, spec.in_channels, spec.channels, spec.dropout)
    if spec.architecture == "fusion-late":
        return LateFusion(spec.dims, NUM_CLASSES)
    if spec.architecture == "fusion-early":
        return EarlyFusion(spec.dims, NUM_CLASSES, spec.width, spec.dropout)
    return HybridFusion(spec.dims, NUM_CLASSES, spec.width, spec.dropout)


def sample_shape(spec: AnySpec) -> tuple[int, ...]:
    """One item's input shape, without the batch axis (the first input for fusion heads)."""
    if isinstance(spec, FaceCNNSpec):
        return (1, spec.size, spec.size)
    if isinstance(spec, SpeechCNN1DSpec):
        return (spec.in_channels, spec.frames)
    if isinstance(spec, SpeechCNN2DSpec):
        return (1, spec.n_mels, spec.frames)
    if isinstance(spec, LandmarkMLPSpec):
        return (spec.in_features,)
    if isinstance(spec, RppgCNNSpec):
        return (spec.in_channels, spec.samples)
    return (sum(spec.dims),)
