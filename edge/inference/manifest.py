"""The JSON manifest beside every model artefact (written by ``clinic-export``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ModelError
from edge.labels import CLASSES

MAKE_HINT = (
    "build it with `clinic-export fer-face --out <path>` or a pack with `clinic-export onnx` "
    "(scripts/setup.sh does both)"
)


class _Loose(BaseModel):
    # Manifests may grow fields the runtime does not use; they are kept, not rejected.
    model_config = ConfigDict(extra="allow", frozen=True)


class InputSpec(_Loose):
    name: str
    shape: list[int | None]
    layout: Literal["NCHW", "NCT", "NC", "NT"]
    dtype: Literal["float32", "int64"] = "float32"
    color: Literal["gray", "rgb"] | None = None  # images only
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0


class ExtraInput(_Loose):
    name: str
    shape: list[int | None]
    dtype: Literal["float32", "int64"] = "float32"


class OutputSpec(_Loose):
    name: str
    labels: list[str] = Field(min_length=1)
    activation: Literal["softmax", "none"]


class ModelManifest(_Loose):
    manifest_version: Literal[1]
    name: str
    task: str
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    format: Literal["onnx"]
    precision: str
    input: InputSpec
    extra_inputs: list[ExtraInput] = Field(default_factory=list)
    output: OutputSpec
    label_map: dict[str, dict[str, float]]

    @model_validator(mode="after")
    def _labels_map_to_product_classes(self) -> ModelManifest:
        for label in self.output.labels:
            if label not in self.label_map:
                raise ValueError(f"output label {label!r} has no entry in label_map")
            for target in self.label_map[label]:
                if target not in CLASSES:
                    raise ValueError(f"label_map target {target!r} is not one of {list(CLASSES)}")
        return self


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(model_path: Path, *, check_hash: bool = True) -> ModelManifest:
    """Read ``<model>.json`` and check the model file against it before anything loads it.

    Raises:
        ModelError: the model or manifest is missing, the manifest is invalid, or the model's hash
            differs from the manifest's (a truncated or corrupt file).
    """
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}; {MAKE_HINT}")
    path = model_path.with_suffix(".json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model manifest not found: {path} (expected beside {model_path}); {MAKE_HINT}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {path} is unreadable: {exc}") from None
    try:
        manifest = ModelManifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelError(f"model manifest {path} is invalid at {where}: {first['msg']}") from None
    if check_hash:
        actual = sha256_file(model_path)
        if actual != manifest.sha256:
            raise ModelError(
                f"model file {model_path} is corrupt or was replaced: sha256 {actual[:12]}... does not match "
                f"its manifest ({manifest.sha256[:12]}...); rebuild it: {MAKE_HINT}"
            )
    return manifest


class ProductClasses:
    """Turns a model's outputs into the product's eight classes with its manifest's label map."""

    def __init__(self, manifest: ModelManifest) -> None:
        # (model classes) x (product classes) matrix; rows sum to 1.
        mapping = np.zeros((len(manifest.output.labels), len(CLASSES)), dtype=np.float32)
        for i, label in enumerate(manifest.output.labels):
            for target, weight in manifest.label_map[label].items():
                mapping[i, CLASSES.index(target)] = weight
        self.mapping = mapping
        self.logits = manifest.output.activation == "none"

    def __call__(self, outputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(N, model classes)`` outputs to ``(N, 8)`` probabilities."""
        probs = outputs
        if self.logits:
            e = np.exp(probs - probs.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        mapped: npt.NDArray[np.float32] = probs @ self.mapping
        return mapped
