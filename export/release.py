"""``clinic-export verify``: FP32, INT8 and FP16 side by side on held-out data, and the release gate.

Each variant's manifest receives ``verification`` (accuracy and macro-F1 when the held-out set has
labels, top-1 agreement with FP32, the largest probability difference) and ``release`` (accepted or
refused, and why). A reduced-precision variant is refused when its accuracy is more than
``max_drop_points`` percentage points below FP32's; on a set without labels the share of items
whose top-1 class differs from FP32's stands in for the accuracy drop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt

from contract.classes import CLASSES
from contract.manifest import ModelManifest, Release, Verification, manifest_path
from export.errors import ExportError, ReleaseRefusedError
from export.manifest import write_model
from export.pack import onnx_outputs, read_index, read_manifest, write_index
from export.train.report import score

logger = logging.getLogger(__name__)

DEFAULT_MAX_DROP_POINTS = 1.0


@dataclass(frozen=True)
class VariantEvidence:
    precision: str
    accuracy: float | None
    macro_f1: float | None
    top1_agreement_with_fp32: float
    max_prob_diff_vs_fp32: float
    drop_points: float
    accepted: bool


def _to_product(probs: npt.NDArray[np.float32], manifest: ModelManifest) -> npt.NDArray[np.float32]:
    """Map a model's own labels onto the product's eight classes with its manifest's label map."""
    out: npt.NDArray[np.float32] = probs @ manifest.class_mapping()
    return out


def _heldout(
    path: Path, manifest: ModelManifest
) -> tuple[dict[str, npt.NDArray[np.generic]], npt.NDArray[np.int64] | None]:
    """The held-out inputs (each under its input's name; the first may be ``x``), in the manifest's
    types, and the labels when the set has them."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            first = manifest.input.name if manifest.input.name in npz.files else "x"
            feeds: dict[str, npt.NDArray[np.generic]] = {manifest.input.name: npz[first].astype(manifest.input.dtype)}
            for extra in manifest.extra_inputs:
                feeds[extra.name] = npz[extra.name].astype(extra.dtype)
            labels = npz["labels"].astype(str) if "labels" in npz.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise ExportError(f"held-out set {path} is unusable for {manifest.name}: {exc}") from None
    y = None if labels is None else np.array([CLASSES.index(label) for label in labels], dtype=np.int64)
    return feeds, y


def verify_model(
    pack: Path, name: str, heldout: Path, *, max_drop_points: float = DEFAULT_MAX_DROP_POINTS
) -> list[VariantEvidence]:
    """Compare every variant of ``name`` with its FP32 variant and record the evidence.

    Raises:
        ExportError: the model or held-out set is missing or unusable.
        ReleaseRefusedError: a variant lost more than the bound (evidence is written first).
    """
    index = read_index(pack)
    if name not in index.models:
        raise ExportError(f"{pack} has no model {name!r}; it has {sorted(index.models)}")
    variants = index.models[name].variants
    manifests = {p: read_manifest(pack / rel) for p, rel in variants.items()}
    feeds, y = _heldout(heldout, manifests["fp32"])
    outputs = {p: _to_product(onnx_outputs(pack / rel, feeds), manifests[p]) for p, rel in variants.items()}
    reference = outputs["fp32"]
    ref_scores = None if y is None else score(y, reference.argmax(1))
    evidence = []
    for precision, probs in outputs.items():
        scores = None if y is None else score(y, probs.argmax(1))
        agreement = float(np.mean(probs.argmax(1) == reference.argmax(1)))
        if scores is not None and ref_scores is not None:
            drop = 100.0 * (ref_scores.accuracy - scores.accuracy)
        else:
            drop = 100.0 * (1.0 - agreement)
        ev = VariantEvidence(
            precision=precision,
            accuracy=None if scores is None else scores.accuracy,
            macro_f1=None if scores is None else scores.macro_f1,
            top1_agreement_with_fp32=agreement,
            max_prob_diff_vs_fp32=float(np.max(np.abs(probs - reference))),
            drop_points=drop,
            accepted=precision == "fp32" or drop <= max_drop_points,
        )
        evidence.append(ev)
        verification = Verification(
            heldout=str(heldout),
            items=int(reference.shape[0]),
            labelled=y is not None,
            accuracy=ev.accuracy,
            macro_f1=ev.macro_f1,
            accuracy_drop_points=None if y is None else drop,
            macro_f1_drop_points=None
            if scores is None or ref_scores is None
            else 100.0 * (ref_scores.macro_f1 - scores.macro_f1),
            top1_agreement_with_fp32=agreement,
            max_prob_diff_vs_fp32=ev.max_prob_diff_vs_fp32,
            verified=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        release = Release(
            accepted=ev.accepted,
            max_drop_points=max_drop_points,
            measure="accuracy drop vs fp32" if y is not None else "top-1 disagreement with fp32 (no labels)",
            reason="reference precision"
            if precision == "fp32"
            else f"{drop:.2f} points {'within' if ev.accepted else 'exceeds'} the bound of {max_drop_points}",
        )
        updated = manifests[precision].model_copy(update={"verification": verification, "release": release})
        write_model(manifest_path(pack / variants[precision]), updated)
        logger.info(
            "%s %s: accuracy %s, agreement with fp32 %.4f, max prob diff %.4f, %s",
            name,
            precision,
            "n/a" if ev.accuracy is None else f"{ev.accuracy:.4f}",
            agreement,
            ev.max_prob_diff_vs_fp32,
            "accepted" if ev.accepted else "REFUSED",
        )
    write_index(pack, index)
    refused = [e for e in evidence if not e.accepted]
    if refused:
        raise ReleaseRefusedError(
            f"{name}: "
            + "; ".join(f"{e.precision} loses {e.drop_points:.2f} points (bound {max_drop_points})" for e in refused)
        )
    return evidence
