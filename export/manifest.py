"""Model manifests: the JSON sidecar that travels with every artefact the room runs.

The runtime reads it to know the input layout, normalisation, output labels and how those labels
map onto the product's eight classes; the toolchain records provenance and verification evidence.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1

# The product's classes (RAVDESS order).
PRODUCT_CLASSES: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(model_path: Path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return model_path.with_suffix(".json")


def write_manifest(model_path: Path, fields: dict[str, Any]) -> Path:
    """Write the sidecar manifest of ``model_path`` with its hash and toolchain versions.

    Args:
        model_path: the artefact, which must exist.
        fields: task-specific fields (input, output, label_map, source, verification, ...).

    Returns:
        Path of the manifest.
    """
    import onnx  # noqa: PLC0415
    import torch  # noqa: PLC0415

    body: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "file": model_path.name,
        "sha256": sha256_file(model_path),
        "size_bytes": model_path.stat().st_size,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "toolchain": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
        },
    }
    body.update(fields)
    out = manifest_path(model_path)
    tmp = out.with_suffix(".json.partial")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out
