"""Reading the manifest beside a model artefact (:class:`contract.manifest.ModelManifest`, written
by ``clinic-export``) and checking the model file against it before anything loads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from contract.manifest import ModelManifest, manifest_path, weights_path
from edge.errors import ModelError
from edge.inference.digests import file_sha256

MAKE_HINT = (
    "build it with `clinic-export fer-face --out <path>` or a pack with `clinic-export onnx` "
    "(scripts/setup.sh does both)"
)


def load_manifest(model_path: Path, *, check_hash: bool = True) -> ModelManifest:
    """Read ``<model>.json`` and check the model file against it before anything loads it.

    Raises:
        ModelError: the model or manifest is missing, the manifest is invalid, or the model's hash
            differs from the manifest's (a truncated or corrupt file).
    """
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}; {MAKE_HINT}")
    path = manifest_path(model_path)
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
        actual = file_sha256(model_path)
        if actual != manifest.sha256:
            raise ModelError(
                f"model file {model_path} is corrupt or was replaced: sha256 {actual[:12]}... does not match "
                f"its manifest ({manifest.sha256[:12]}...); rebuild it: {MAKE_HINT}"
            )
        _check_weights(model_path, manifest)
    return manifest


def _check_weights(model_path: Path, manifest: ModelManifest) -> None:
    """The model's weights file (where its manifest names one) is there and is the one hashed."""
    if manifest.weights_sha256 is None:
        return
    weights = weights_path(model_path)
    if manifest.weights_file != weights.name:
        raise ModelError(f"model manifest of {model_path} names weights {manifest.weights_file!r}, not {weights.name}")
    if not weights.is_file():
        raise ModelError(f"model weights not found: {weights} (beside {model_path.name}); {MAKE_HINT}")
    actual = file_sha256(weights)
    if actual != manifest.weights_sha256:
        raise ModelError(
            f"model weights {weights} are corrupt or were replaced: sha256 {actual[:12]}... does not match "
            f"its manifest ({manifest.weights_sha256[:12]}...); rebuild it: {MAKE_HINT}"
        )


class ProductClasses:
    """Turns a model's outputs into the product's eight classes with its manifest's label map."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.mapping = manifest.class_mapping()  # (model classes) x (product classes); rows sum to 1
        self.logits = manifest.output.activation == "none"

    def __call__(self, outputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(N, model classes)`` outputs to ``(N, 8)`` probabilities."""
        probs = outputs
        if self.logits:
            e = np.exp(probs - probs.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        mapped: npt.NDArray[np.float32] = probs @ self.mapping
        return mapped
