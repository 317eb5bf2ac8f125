"""The JSON manifest beside every model artefact: ``<model>.onnx`` -> ``<model>.json``.

``clinic-export`` writes it (:meth:`ModelManifest.model_dump_json`) and the room reads it
(:meth:`ModelManifest.model_validate_json`). It says the input layout and normalisation, the output
labels and how they map onto the product's eight classes, and carries the toolchain's provenance
and verification evidence. Manifests may grow fields a reader does not know; they are kept, not
rejected, so an older room reads a newer manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.classes import CLASSES

MANIFEST_VERSION: Final = 1


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class InputSpec(_Loose):
    name: str
    shape: list[int | None]
    layout: Literal["NCHW", "NCT", "NC", "NT", "NTC"]
    dtype: Literal["float32", "int64"] = "float32"
    color: Literal["gray", "rgb"] | None = None  # images only
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0
    # What the input is made of; each model kind sets its own subset.
    # frame-features | logmel | wordpiece-ids | landmark-geometry | rppg-signal | ge2e-mel
    features: str | None = None
    rate: int | None = None  # audio models: sample rate
    window_s: float | None = None  # audio models: clip length
    n_mels: int | None = None
    n_mfcc: int | None = None
    tokenizer: str | None = None  # text models: tokenizer file beside the model
    max_tokens: int | None = None
    modalities: list[str] | None = None  # fusion heads: the channels, in input order
    dims: list[int] | None = None  # fusion heads: each channel's width


class ExtraInput(_Loose):
    name: str
    shape: list[int | None]
    dtype: Literal["float32", "int64"] = "float32"


class OutputSpec(_Loose):
    """A classifier's output (``softmax`` or ``none``: one value per label), or an embedding (``l2``:
    unit vectors, no labels)."""

    name: str
    labels: list[str] = Field(default_factory=list)
    activation: Literal["softmax", "none", "l2"]

    @model_validator(mode="after")
    def _labelled_unless_embedding(self) -> OutputSpec:
        if self.activation != "l2" and not self.labels:
            raise ValueError(f"a {self.activation} output needs its labels")
        return self


class Release(_Loose):
    """The release decision of ``clinic-export verify`` for one variant."""

    accepted: bool
    max_drop_points: float
    measure: str
    reason: str


class Verification(_Loose):
    """Evidence against the FP32 variant on a held-out set (``clinic-export verify``), or the
    port's agreement with its original (``clinic-export fer-face``)."""

    heldout: str | None = None
    items: int | None = None
    labelled: bool | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    accuracy_drop_points: float | None = None
    macro_f1_drop_points: float | None = None
    top1_agreement_with_fp32: float | None = None
    max_prob_diff_vs_fp32: float | None = None
    verified: str | None = None
    keras_vs_torch: dict[str, float | int] | None = None  # a port: original framework vs PyTorch
    torch_vs_onnx: dict[str, float | int] | None = None
    tolerance_max_abs_error: float | None = None


class Toolchain(_Loose):
    python: str
    torch: str
    onnx: str


class ModelManifest(_Loose):
    manifest_version: Literal[1] = MANIFEST_VERSION
    name: str
    task: str
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    format: Literal["onnx"]
    precision: str
    input: InputSpec
    extra_inputs: list[ExtraInput] = Field(default_factory=list)
    output: OutputSpec
    extra_outputs: list[str] = Field(default_factory=list)
    label_map: dict[str, dict[str, float]]
    classes: list[str] = Field(default_factory=lambda: list(CLASSES))
    architecture: str | None = None
    size_bytes: int | None = None
    # A large model's weights, in a file beside the graph that the room maps into memory instead of
    # reading (ONNX external data): its name and hash. None: the weights are in ``file``.
    weights_file: str | None = None
    weights_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    created: str | None = None
    toolchain: Toolchain | None = None
    spec: dict[str, Any] | None = None  # the architecture's hyper-parameters
    source: dict[str, Any] | None = None  # provenance: checkpoint, data, licence
    export_check: dict[str, Any] | None = None  # ONNX Runtime vs PyTorch on the exported graph
    ops: dict[str, int] | None = None  # operator counts (Q/DQ nodes of an INT8 variant)
    calibration: dict[str, Any] | None = None  # the INT8 calibration set a variant was quantised with
    verification: Verification | None = None
    release: Release | None = None

    @model_validator(mode="after")
    def _labels_map_to_product_classes(self) -> ModelManifest:
        for label in self.output.labels:
            if label not in self.label_map:
                raise ValueError(f"output label {label!r} has no entry in label_map")
            for target in self.label_map[label]:
                if target not in CLASSES:
                    raise ValueError(f"label_map target {target!r} is not one of {list(CLASSES)}")
        return self

    def class_mapping(self) -> npt.NDArray[np.float32]:
        """The ``(model classes, product classes)`` matrix of the label map; rows sum to 1."""
        mapping = np.zeros((len(self.output.labels), len(CLASSES)), dtype=np.float32)
        for i, label in enumerate(self.output.labels):
            for target, weight in self.label_map[label].items():
                mapping[i, CLASSES.index(target)] = weight
        return mapping


def manifest_path(model_path: Path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return model_path.with_suffix(".json")


def weights_path(model_path: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.data``: where a large model's weights are kept beside its graph."""
    return model_path.with_name(model_path.name + ".data")
