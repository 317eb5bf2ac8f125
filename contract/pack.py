"""A model pack's index, ``<pack>/pack.json``: its models, their roles and precision variants, and
the SHA-256 of every file. ``clinic-export`` writes it; the room checks every file against it
before anything loads a model."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

PACK_VERSION: Final = 1
Precision = Literal["fp32", "int8", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8", "fp16")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


INTENDED_USE = (
    "Estimating the emotion expressed in a therapy room, as one input to a timeline the therapist "
    "reviews. Not a diagnosis and not a measure of what a person feels."
)


class ModelCard(_Loose):
    data: str
    licence: str
    intended_use: str = INTENDED_USE
    limits: tuple[str, ...] = ()


class PackModel(_Loose):
    role: str
    architecture: str
    variants: dict[str, str]  # precision -> file, relative to the pack
    files: list[str] = Field(default_factory=list)  # files the model needs besides its variants (a tokenizer)
    card: ModelCard | None = None


class DisparityFit(_Loose):
    """The disparity threshold fitted from clips of known disparity, and how it did held out."""

    threshold_before: float
    threshold_after: float
    held_out_balanced_accuracy_before: float
    held_out_balanced_accuracy_after: float
    clips: int
    disparate: int  # of the clips, how many truly held a disparity
    written: bool  # improved by the margin, so the pack carries it


class FitEvidence(_Loose):
    """How a calibration was fitted, and what it did on speakers it had not seen."""

    held_out_uar_before: float | None  # None: no labelled clips (only judged moments)
    held_out_uar_after: float | None
    clips: int
    speakers: int
    learned: tuple[str, ...] = ()  # the channels whose weight or temperature was learned
    protocol: str = ""
    corpora: tuple[str, ...] = ()
    margin: float = 0.0
    fusion_written: bool = True  # False: the fusion's values are the room's (only the threshold improved)
    disparity: DisparityFit | None = None


class FusionCalibration(_Loose):
    """The room's fusion fitted from labels (``clinic-export fit``), from stored window outputs only:
    with ``fusion.calibration = "pack"`` (the default) these replace the room config's values."""

    weights: dict[str, float]  # late fusion: each channel's weight
    channel_temperatures: dict[str, float]
    temperature: float = 1.0  # of the fused distribution
    voice_tempering: float  # share of the acoustic cues' kernel kept at full confidence
    disparity_threshold: float | None = None  # None: the room's own
    speakers: tuple[str, ...] = ()  # whose clips it was fitted on (evaluate warns when it meets them)
    fitted: FitEvidence | None = None


class PackIndex(_Loose):
    pack_version: Literal[1] = PACK_VERSION
    name: str
    models: dict[str, PackModel] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)  # relative path -> sha256
    updated: str | None = None
    # Grows with every index written (signed with it): a room refuses a release older than the newest
    # it loaded, so an old pack signed by a trusted key cannot be slipped back in.
    release: int | None = None
    calibration: FusionCalibration | None = None
