"""Writing model manifests (:class:`contract.manifest.ModelManifest`) beside the artefacts.

The runtime reads the same model to know the input layout, normalisation, output labels and how
those labels map onto the product's eight classes; the toolchain records provenance and
verification evidence in it.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from contract.files import sha256_file
from contract.manifest import ModelManifest, Toolchain, manifest_path, weights_path


def write_model(path: Path, model: BaseModel) -> Path:
    """Write ``model`` as indented JSON through a partial file, so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(model.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def stamped(model_path: Path, manifest: ModelManifest) -> ModelManifest:
    """``manifest`` with the artefact's name, hash, size (its weights file's included, where it has
    one), creation time and toolchain versions."""
    import onnx  # noqa: PLC0415
    import torch  # noqa: PLC0415

    weights = weights_path(model_path)
    external = weights.is_file()
    return manifest.model_copy(
        update={
            "file": model_path.name,
            "sha256": sha256_file(model_path),
            "weights_file": weights.name if external else None,
            "weights_sha256": sha256_file(weights) if external else None,
            "size_bytes": model_path.stat().st_size + (weights.stat().st_size if external else 0),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "toolchain": Toolchain(python=platform.python_version(), torch=torch.__version__, onnx=onnx.__version__),
        }
    )


def write_manifest(model_path: Path, manifest: ModelManifest) -> Path:
    """Stamp ``manifest`` with ``model_path``'s hash and write it beside the model.

    Args:
        model_path: the artefact, which must exist.
        manifest: the model's description; ``file``, ``sha256``, ``size_bytes``, ``created`` and
            ``toolchain`` are filled in here.

    Returns:
        Path of the manifest.
    """
    out = manifest_path(model_path)
    # Validated again as a whole: a field set after construction must still satisfy the model.
    checked = ModelManifest.model_validate(stamped(model_path, manifest).model_dump())
    return write_model(out, checked)


UNSTAMPED = "0" * 64  # placeholder hash of a manifest under construction; write_manifest replaces it
