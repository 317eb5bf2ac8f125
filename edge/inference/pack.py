"""Opening a model pack (written by ``clinic-export onnx``/``verify``) and choosing a variant.

A pack is authenticated first (:func:`trust_pack`): its ``pack.json`` must carry an Ed25519
signature by one of the room's ``models.trusted_keys`` (:mod:`contract.signing`). Every later
read of the pack checks that ``pack.json`` is still the signed one. Before a variant is handed to a
backend, its ONNX file and manifest are hashed and compared with that index, and a
reduced-precision variant must carry an accepted release from ``clinic-export verify``. A
damaged, replaced, unsigned or unverified file is refused with a message that says which file and
what to do; it never reaches a call that could crash the process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from pydantic import ValidationError

from contract.manifest import ModelManifest, weights_path
from contract.pack import PackIndex, PackModel, Precision
from contract.signing import SignatureError, Signer, verify_file
from edge.config.models import ModelsConfig
from edge.errors import ModelError
from edge.inference.digests import file_sha256

logger = logging.getLogger(__name__)

RELEASES_FILE = "pack-releases.json"  # in the room's state folder: the newest release loaded per signing key
PACK_HINT = "rebuild the pack with `clinic-export onnx` (scripts/setup.sh builds build/models/pack)"


_trusted: dict[Path, Signer] = {}
_trusted_lock = threading.Lock()


def trust_pack(models: ModelsConfig, releases: Path | None = None) -> Signer | None:
    """Authenticate the configured pack (None without one): its signature must verify with one of
    ``models.trusted_keys``; from then on the process reads it only while ``pack.json`` is unchanged.

    With ``releases`` (the room's record, in its state folder) the pack's release must be no older
    than the newest the room loaded from the same signing key, unless ``models.pin_release`` names
    it; the record then keeps the newest. ``models.pin_release`` is enforced in any case.

    Raises:
        ModelError: no pack index, unsigned, signed by an unknown key, a signature that does not
            verify, or an older release than the room loaded before (a rollback).
    """
    if models.pack is None:
        return None
    index = models.pack / "pack.json"
    if not index.is_file():
        raise ModelError(f"no model pack at {models.pack} (pack.json missing); {PACK_HINT}")
    try:
        signer = verify_file(index, models.trusted_keys)
    except SignatureError as exc:
        raise ModelError(f"model pack refused: {exc}") from None
    with _trusted_lock:
        _trusted[models.pack.resolve()] = signer
    release = open_pack(models.pack).release
    _check_release(models, signer, release, releases)
    logger.info(
        "model pack %s (release %s) signed by key %s (%s)", models.pack, release, signer.key_id, signer.key_file
    )
    return signer


def _check_release(models: ModelsConfig, signer: Signer, release: int | None, releases: Path | None) -> None:
    if models.pin_release is not None and release != models.pin_release:
        raise ModelError(
            f"model pack {models.pack} is release {release}; models.pin_release asks for {models.pin_release}"
        )
    if releases is None:
        return
    seen = _read_releases(releases)
    newest = seen.get(signer.key_id)
    if models.pin_release is None and newest is not None and (release is None or release < newest):
        raise ModelError(
            f"model pack {models.pack} is release {release}, older than release {newest} this room loaded "
            f"from the same key ({signer.key_id}): an old signed pack is refused. To go back to it on purpose, "
            f"set models.pin_release = {release} in the room config"
        )
    if release is not None and (newest is None or release > newest):
        seen[signer.key_id] = release
        _write_releases(releases, seen)


def _read_releases(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"the room's record of pack releases {path} is unreadable: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
        raise ModelError(f"the room's record of pack releases {path} is not a key -> release map")
    return {str(k): int(v) for k, v in data.items()}


def _write_releases(path: Path, seen: dict[str, int]) -> None:
    """Atomically, owner-only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(seen, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise ModelError(f"cannot record the pack's release in {path}: {exc}") from None


def open_pack(folder: Path) -> PackIndex:
    """Read and validate ``folder/pack.json``, which :func:`trust_pack` must have authenticated.

    Raises:
        ModelError: missing, invalid, never authenticated, or changed since it was.
    """
    path = folder / "pack.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"no model pack at {folder} (pack.json missing); {PACK_HINT}") from None
    except OSError as exc:
        raise ModelError(f"model pack index {path} is unreadable: {exc}; {PACK_HINT}") from None
    with _trusted_lock:
        signer = _trusted.get(folder.resolve())
    if signer is None:
        raise ModelError(f"model pack {folder} was not authenticated (its signature is checked at start)")
    if hashlib.sha256(data).hexdigest() != signer.digest:
        raise ModelError(f"{path} changed since its signature was checked; restart to check the new one")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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
    actual = file_sha256(path)
    if actual != expected:
        raise ModelError(
            f"model pack file {path} is corrupt or was replaced: sha256 {actual[:12]}... but the pack lists "
            f"{expected[:12]}...; {PACK_HINT}"
        )
    return path


def _check_variant(folder: Path, index: PackIndex, rel: str, extras: list[str]) -> tuple[Path, Path]:
    """Check a variant's files against the index: its graph, its manifest, its weights (a large
    model's, beside the graph) and the model's other files (a tokenizer). Returns the graph's and
    the manifest's paths."""
    onnx_path = _check_file(folder, index, rel)
    manifest_path = _check_file(folder, index, str(Path(rel).with_suffix(".json")))
    weights = str(weights_path(Path(rel)))
    if weights in index.files or (folder / weights).exists():
        _check_file(folder, index, weights)
    for extra in extras:
        _check_file(folder, index, extra)
    return onnx_path, manifest_path


def _model(folder: Path, index: PackIndex, role: str, name: str | None) -> tuple[str, PackModel]:
    """The pack's ``role`` model (or the model ``name``)."""
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
    return model_name, model


def _unreleased(folder: Path, model_name: str, onnx_path: Path, manifest_path: Path) -> str | None:
    """Why a reduced-precision variant may not run (never verified, or refused); None when released."""
    try:
        release = ModelManifest.model_validate_json(manifest_path.read_text(encoding="utf-8")).release
    except ValidationError as exc:
        raise ModelError(f"manifest {manifest_path} is invalid: {exc.errors()[0]['msg']}; {PACK_HINT}") from None
    if release is None:
        return (
            f"{onnx_path} has not been verified against fp32; run `clinic-export verify --pack {folder} "
            f"--model {model_name} --heldout <held-out set>` or use precision fp32"
        )
    if not release.accepted:
        return (
            f"{onnx_path} was refused at verification ({release.reason}); use precision fp32 or "
            "rebuild the variant (better calibration data for a calibrated INT8 variant)"
        )
    return None


def unusable_variant(folder: Path, role: str, precision: Precision) -> str | None:
    """Why the pack's ``role`` model cannot run at ``precision`` (no such variant, never verified,
    refused at verification), or None when :func:`select_model` would hand it over.

    Raises:
        ModelError: the pack or the variant's manifest is damaged (a hash fails), as select_model.
    """
    index = open_pack(folder)
    model_name, model = _model(folder, index, role, None)
    rel = model.variants.get(precision)
    if rel is None:
        return f"{model_name} in {folder} has no {precision} variant"
    if precision == "fp32":
        return None
    manifest_path = _check_file(folder, index, str(Path(rel).with_suffix(".json")))
    return _unreleased(folder, model_name, folder / rel, manifest_path)


def select_model(folder: Path, role: str, precision: Precision, name: str | None = None) -> Path:
    """The checked ONNX file of the pack's ``role`` model (or the model ``name``) at ``precision``.

    Raises:
        ModelError: no such model or variant, a file fails its hash, or a reduced-precision
            variant was refused by (or never went through) ``clinic-export verify``.
    """
    index = open_pack(folder)
    model_name, model = _model(folder, index, role, name)
    rel = model.variants.get(precision)
    if rel is None:
        raise ModelError(
            f"{model_name} in {folder} has no {precision} variant (it has {sorted(model.variants)}); "
            f"build it with `clinic-export onnx --precision {precision}` (the text model: `clinic-export text-emotion`)"
        )
    onnx_path, manifest_path = _check_variant(folder, index, rel, model.files)
    if precision != "fp32":
        problem = _unreleased(folder, model_name, onnx_path, manifest_path)
        if problem is not None:
            raise ModelError(problem)
    logger.info("model pack %s: %s %s (%s)", folder, model_name, precision, onnx_path.name)
    return onnx_path


def face_model_path(models: ModelsConfig) -> Path:
    """The face model's ONNX file: the configured single file, or the checked variant of the
    authenticated pack."""
    if models.pack is not None:
        trust_pack(models)
        return select_model(models.pack, "face", models.precision, models.face_model)
    if models.face is None:  # excluded by ModelsConfig's validator
        raise ModelError("models: neither face nor pack is configured")
    return models.face
