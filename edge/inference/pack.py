"""Opening a model pack (written by ``clinic-export onnx``/``verify``) and choosing a variant.

Before a variant is handed to a backend, its ONNX file and manifest are hashed and compared with
the pack's index, and a reduced-precision variant must carry an accepted release from
``clinic-export verify``. A damaged, replaced or unverified file is refused with a message that
says which file and what to do; it never reaches a call that could crash the process.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from contract.files import sha256_file
from contract.manifest import ModelManifest
from contract.pack import PackIndex, Precision
from edge.config.models import ModelsConfig
from edge.errors import ModelError

logger = logging.getLogger(__name__)

PACK_HINT = "rebuild the pack with `clinic-export onnx` (scripts/setup.sh builds build/models/pack)"


def open_pack(folder: Path) -> PackIndex:
    """Read and validate ``folder/pack.json``.

    Raises:
        ModelError: missing or invalid index.
    """
    path = folder / "pack.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model pack at {folder} (pack.json missing); {PACK_HINT}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model pack index {path} is unreadable: {exc}; {PACK_HINT}") from None
    try:
        return PackIndex.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ModelError(
            f"model pack index {path} is invalid at {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None


def _check_file(folder: Path, index: PackIndex, rel: str) -> Path:
    path = folder / rel
    expected = index.files.get(rel)
    if expected is None:
        raise ModelError(f"{path} is not listed in {folder / 'pack.json'}; {PACK_HINT}")
    if not path.is_file():
        raise ModelError(f"model pack file missing: {path}; {PACK_HINT}")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"model pack file {path} is corrupt or was replaced: sha256 {actual[:12]}... but the pack lists "
            f"{expected[:12]}...; {PACK_HINT}"
        )
    return path


def select_model(folder: Path, role: str, precision: Precision, name: str | None = None) -> Path:
    """The checked ONNX file of the pack's ``role`` model (or the model ``name``) at ``precision``.

    Raises:
        ModelError: no such model or variant, a file fails its hash, or a reduced-precision
            variant was refused by (or never went through) ``clinic-export verify``.
    """
    index = open_pack(folder)
    if name is not None:
        if name not in index.models:
            raise ModelError(f"model pack {folder} has no model {name!r}; it has {sorted(index.models)}")
        candidates = {name: index.models[name]}
    else:
        candidates = {n: m for n, m in index.models.items() if m.role == role}
    if not candidates:
        raise ModelError(f"model pack {folder} has no {role} model; it has {sorted(index.models)}")
    if len(candidates) > 1:
        raise ModelError(f"model pack {folder} has several {role} models {sorted(candidates)}; name one in the config")
    model_name, model = next(iter(candidates.items()))
    if model.role != role:
        raise ModelError(f"{model_name} in {folder} is a {model.role} model, not a {role} model")
    rel = model.variants.get(precision)
    if rel is None:
        raise ModelError(
            f"{model_name} in {folder} has no {precision} variant (it has {sorted(model.variants)}); "
            f"build it with `clinic-export onnx --precision {precision}`"
        )
    onnx_path = _check_file(folder, index, rel)
    manifest_path = _check_file(folder, index, str(Path(rel).with_suffix(".json")))
    for extra in model.files:
        _check_file(folder, index, extra)
    if precision != "fp32":
        try:
            release = ModelManifest.model_validate_json(manifest_path.read_text(encoding="utf-8")).release
        except ValidationError as exc:
            raise ModelError(f"manifest {manifest_path} is invalid: {exc.errors()[0]['msg']}; {PACK_HINT}") from None
        if release is None:
            raise ModelError(
                f"{onnx_path} has not been verified against fp32; run `clinic-export verify --pack {folder} "
                f"--model {model_name} --heldout <held-out set>` or use precision fp32"
            )
        if not release.accepted:
            raise ModelError(
                f"{onnx_path} was refused at verification ({release.reason}); use precision fp32 or "
                "rebuild the variant with better calibration data"
            )
    logger.info("model pack %s: %s %s (%s)", folder, model_name, precision, onnx_path.name)
    return onnx_path


def face_model_path(models: ModelsConfig) -> Path:
    """The face model's ONNX file: the configured single file, or the checked pack variant."""
    if models.pack is not None:
        return select_model(models.pack, "face", models.precision, models.face_model)
    if models.face is None:  # excluded by ModelsConfig's validator
        raise ModelError("models: neither face nor pack is configured")
    return models.face
