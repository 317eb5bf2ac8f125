"""Model packs: one folder with every model's ONNX variants, manifests, label maps and a model card.

Layout::

    PACK/pack.json                      index: models, roles, variants, sha256 of every file
    PACK/MODEL_CARD.md                  data, licence, intended use, limits, evidence per model
    PACK/<model>/<model>.<precision>.onnx
    PACK/<model>/<model>.<precision>.json   the variant's manifest (shapes, label map, evidence)

The room opens a pack by path and checks ``pack.json``'s hashes and each manifest before it loads a
variant (``edge/inference/pack.py``); ``clinic-export verify`` writes the precision evidence and the
release decision into the manifests.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from contract.classes import CLASSES
from contract.files import sha256_file
from contract.manifest import ExtraInput, InputSpec, ModelManifest, OutputSpec, weights_path
from contract.pack import PRECISIONS, FusionCalibration, ModelCard, PackIndex, PackModel, Precision
from export.errors import ExportError, VerificationError
from export.manifest import UNSTAMPED, write_manifest, write_model
from export.onnx_export import export_onnx, externalize_weights
from export.precision import (
    WEIGHT_BLOCK,
    convert_fp16,
    count_qdq,
    load_calibration,
    quantize_int8,
    quantize_weights_int8,
)
from export.verify import Agreement, compare

logger = logging.getLogger(__name__)

# ONNX Runtime against PyTorch on the same float graph: float32 rounding only.
MAX_EXPORT_ERROR = 1e-4


@dataclass(frozen=True)
class ModelSource:
    """Everything a pack needs to know about one trained model."""

    name: str
    role: str
    architecture: str
    module: nn.Module  # returns the outputs named below, probabilities first
    inputs: dict[str, tuple[int, ...]]  # one item's shape, with a batch of 1
    outputs: tuple[str, ...]
    output_labels: tuple[str, ...]
    label_map: dict[str, dict[str, float]]
    input_fields: dict[str, Any]  # layout, color, pixel scale/offset, features
    real_inputs: dict[str, npt.NDArray[np.generic]] | None
    provenance: dict[str, Any]
    card: ModelCard
    spec: dict[str, Any] = field(default_factory=dict)
    int_inputs: tuple[str, ...] = ()  # int64 inputs (token ids, attention masks)
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)  # dynamic axes besides the batch
    extra_files: dict[str, Path] = field(default_factory=dict)  # copied beside the variants, hashed
    activation: Literal["softmax", "l2"] = "softmax"  # l2: an embedding model (no labels)
    # its INT8 variant: Q/DQ from calibration data, or weight-only (a transformer's matrices; export.precision)
    int8: Literal["calibrated", "weights"] = "calibrated"


@dataclass(frozen=True)
class AddedModel:
    variants: dict[str, Path]
    torch_vs_onnx: Agreement


def _random_inputs(source: ModelSource, count: int, seed: int = 0) -> dict[str, npt.NDArray[np.generic]]:
    rng = np.random.default_rng(seed)
    feeds: dict[str, npt.NDArray[np.generic]] = {}
    for name, shape in source.inputs.items():
        if name in source.int_inputs:
            feeds[name] = (
                np.ones((count, *shape[1:]), dtype=np.int64)
                if name == "attention_mask"
                else rng.integers(1000, 2000, size=(count, *shape[1:])).astype(np.int64)
            )
        elif name == "present":
            feeds[name] = (rng.uniform(size=(count, *shape[1:])) > 0.3).astype(np.float32)
        else:
            feeds[name] = rng.normal(size=(count, *shape[1:])).astype(np.float32)
    return feeds


def torch_outputs(module: nn.Module, feeds: Mapping[str, npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]:
    module.eval()
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()))
    first = out[0] if isinstance(out, tuple) else out
    result: npt.NDArray[np.float32] = np.asarray(first.numpy(), dtype=np.float32)
    return result


def onnx_outputs(path: Path, feeds: Mapping[str, npt.NDArray[np.generic]], batch: int = 64) -> npt.NDArray[np.float32]:
    """First output of ``path`` under ONNX Runtime's CPU provider, in batches."""
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    count = next(iter(feeds.values())).shape[0]
    outs = [
        np.asarray(session.run(None, {k: np.ascontiguousarray(v[i : i + batch]) for k, v in feeds.items()})[0])
        for i in range(0, count, batch)
    ]
    result: npt.NDArray[np.float32] = np.concatenate(outs).astype(np.float32)
    return result


def _variant_path(pack: Path, name: str, precision: str) -> Path:
    return pack / name / f"{name}.{precision}.onnx"


def _shape(source: ModelSource, name: str, shape: tuple[int, ...]) -> list[int | None]:
    """Batch and the source's other dynamic axes as None."""
    dynamic = source.dynamic.get(name, {})
    return [None if i == 0 or i in dynamic else d for i, d in enumerate(shape)]


def _manifest(source: ModelSource, precision: str, **evidence: Any) -> ModelManifest:
    """The manifest of one variant, before ``write_manifest`` stamps it with the file's hash."""
    first, *rest = source.inputs.items()
    return ModelManifest(
        name=source.name,
        task=source.role,
        architecture=source.architecture,
        file="",
        sha256=UNSTAMPED,
        format="onnx",
        precision=precision,
        input=InputSpec(name=first[0], shape=_shape(source, *first), **source.input_fields),
        extra_inputs=[
            ExtraInput(name=k, shape=_shape(source, k, v), dtype="int64" if k in source.int_inputs else "float32")
            for k, v in rest
        ],
        output=OutputSpec(name=source.outputs[0], labels=list(source.output_labels), activation=source.activation),
        extra_outputs=list(source.outputs[1:]),
        label_map=source.label_map,
        classes=list(CLASSES),
        spec=source.spec,
        source=source.provenance,
        **evidence,
    )


def add_model(
    pack: Path,
    source: ModelSource,
    *,
    precisions: tuple[Precision, ...] = PRECISIONS,
    calibration: Path | None = None,
    opset: int = 17,
) -> AddedModel:
    """Export ``source`` into ``pack`` in the given precisions and update the index and card.

    The FP32 graph is compared with PyTorch on random inputs and on the real held-out inputs
    (``source.real_inputs``); the figures go into every variant's manifest.

    Raises:
        ExportError: INT8 asked for without calibration data, or an export step failed.
        VerificationError: the FP32 ONNX graph does not reproduce PyTorch.
    """
    if "fp32" not in precisions:
        raise ExportError("every pack model needs its fp32 variant: INT8 and FP16 are checked against it")
    calibration_feeds = None
    if "int8" in precisions and source.int8 == "calibrated":
        if calibration is None:
            raise ExportError(
                f"INT8 for {source.name} needs calibration data: pass --calibration export/int8/{source.name}/"
            )
        calibration_feeds = load_calibration(calibration, list(source.inputs))
    fp32 = export_onnx(
        source.module,
        _variant_path(pack, source.name, "fp32"),
        inputs=source.inputs,
        outputs=source.outputs,
        opset=opset,
        dtypes=dict.fromkeys(source.int_inputs, torch.int64),
        dynamic=source.dynamic,
    )
    feeds = _random_inputs(source, 64)
    if source.real_inputs and source.dynamic:  # variable-length inputs: compare on the real ones only
        feeds = {k: v[:256] for k, v in source.real_inputs.items()}
    elif source.real_inputs:
        feeds = {k: np.concatenate([feeds[k], source.real_inputs[k][:256]]) for k in feeds}
    agreement = compare(torch_outputs(source.module, feeds), onnx_outputs(fp32, feeds))
    if agreement.max_abs_error > MAX_EXPORT_ERROR or agreement.top1_agreement < 1.0:
        raise VerificationError(
            f"{fp32}: ONNX Runtime vs PyTorch differ (max abs error {agreement.max_abs_error:.2e}, "
            f"top-1 agreement {agreement.top1_agreement:.4f}); expected <= {MAX_EXPORT_ERROR} and 1.0"
        )
    logger.info(
        "%s fp32 vs PyTorch: max abs error %.2e, top-1 agreement %.4f over %d inputs (%s real)",
        source.name,
        agreement.max_abs_error,
        agreement.top1_agreement,
        agreement.samples,
        0 if not source.real_inputs else min(256, next(iter(source.real_inputs.values())).shape[0]),
    )
    export_check = {"torch_vs_onnx_fp32": agreement.as_dict(), "tolerance_max_abs_error": MAX_EXPORT_ERROR}
    variants = {"fp32": fp32}
    if calibration_feeds is not None:
        variants["int8"] = quantize_int8(fp32, _variant_path(pack, source.name, "int8"), calibration_feeds)
    elif "int8" in precisions:
        variants["int8"] = quantize_weights_int8(fp32, _variant_path(pack, source.name, "int8"))
    if "fp16" in precisions:
        variants["fp16"] = convert_fp16(fp32, _variant_path(pack, source.name, "fp16"))
    for path in variants.values():  # a large model's weights beside it, mapped by the room (onnx_export)
        externalize_weights(path)
    for precision, path in variants.items():
        extra: dict[str, Any] = {"export_check": export_check, "ops": count_qdq(path)}
        if precision == "int8":
            extra.update(_int8_method(calibration, calibration_feeds))
        write_manifest(path, _manifest(source, precision, **extra))
    index = read_index(pack)
    model = PackModel(
        role=source.role,
        architecture=source.architecture,
        variants={p: str(path.relative_to(pack)) for p, path in variants.items()},
        files=[str(_copy_extra(pack, source, name, src).relative_to(pack)) for name, src in source.extra_files.items()],
        card=source.card,
    )
    write_index(pack, index.model_copy(update={"models": {**index.models, source.name: model}}))
    return AddedModel(variants, agreement)


def _int8_method(
    calibration: Path | None, feeds: Mapping[str, npt.NDArray[np.float32]] | None
) -> dict[str, dict[str, Any]]:
    """How an INT8 variant was made, for its manifest: calibrated Q/DQ, or weight-only."""
    if calibration is not None and feeds is not None:
        return {
            "calibration": {
                "folder": str(calibration),
                "items": int(next(iter(feeds.values())).shape[0]),
                "sha256": sha256_file(calibration / "calibration.npz"),
                "method": "min-max; symmetric int8 activations; per-channel symmetric int8 weights in a 7-bit range",
            }
        }
    return {
        "quantization": {
            "method": f"weight-only: MatMul weights in symmetric int8 blocks of {WEIGHT_BLOCK} (MatMulNBits); "
            "float32 activations; ONNX Runtime only",
        }
    }


def _copy_extra(pack: Path, source: ModelSource, name: str, src: Path) -> Path:
    dst = pack / source.name / name
    shutil.copyfile(src, dst)
    return dst


def read_index(pack: Path) -> PackIndex:
    """The pack's index, or an empty one for a new pack.

    Raises:
        ExportError: the index exists but cannot be read as a pack index.
    """
    path = pack / "pack.json"
    if not path.is_file():
        return PackIndex(name=pack.name)
    try:
        return PackIndex.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"pack index {path} is unreadable: {exc}") from None


def read_manifest(path: Path) -> ModelManifest:
    """The manifest beside an ONNX variant.

    Raises:
        ExportError: missing or not a valid manifest.
    """
    try:
        return ModelManifest.model_validate_json(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"manifest of {path} is missing or invalid: {exc}") from None


def write_index(pack: Path, index: PackIndex) -> Path:
    """Rehash every variant and manifest, then write ``pack.json`` and ``MODEL_CARD.md``."""
    files: dict[str, str] = {}
    for model in index.models.values():
        for rel in model.variants.values():
            variant, weights = pack / rel, weights_path(pack / rel)
            for path in (variant, variant.with_suffix(".json"), *([weights] if weights.is_file() else [])):
                files[str(path.relative_to(pack))] = sha256_file(path)
        for rel in model.files:
            files[rel] = sha256_file(pack / rel)
    now = datetime.now(timezone.utc)
    index = index.model_copy(
        update={
            "files": dict(sorted(files.items())),
            "updated": now.isoformat(timespec="seconds"),
            # Monotonic: one past the last, and at least the time in seconds (packs built apart).
            "release": max((index.release or 0) + 1, int(now.timestamp())),
        }
    )
    write_model(pack / "pack.json", PackIndex.model_validate(index.model_dump()))
    (pack / "MODEL_CARD.md").write_text(model_card(pack, index), encoding="utf-8")
    signature = pack / "pack.json.sig"
    if signature.exists():  # it signed the index just replaced: no longer true
        signature.unlink()
        logger.warning("%s changed: its signature was removed; sign it again (clinic-export sign)", pack / "pack.json")
    return pack / "pack.json"


def _evidence_rows(pack: Path, model: PackModel) -> list[str]:
    rows = []
    for precision, rel in model.variants.items():
        manifest = read_manifest(pack / rel)
        size = (manifest.size_bytes or (pack / rel).stat().st_size) / 1024  # the graph's and its weights'
        ver = manifest.verification
        release = manifest.release

        def fmt(value: float | None, digits: int = 4) -> str:
            return "n/a" if value is None else f"{value:.{digits}f}"

        released = "not verified" if release is None else ("yes" if release.accepted else "no")
        rows.append(
            f"| {precision} | {size:.0f} KiB | {fmt(ver.accuracy if ver else None)} | "
            f"{fmt(ver.macro_f1 if ver else None)} | {fmt(ver.top1_agreement_with_fp32 if ver else None)} | "
            f"{fmt(ver.max_prob_diff_vs_fp32 if ver else None)} | {released} |"
        )
    return rows


def _calibration_card(fit: FusionCalibration) -> list[str]:
    lines = ["## Fusion fitted from labels (`clinic-export fit`)", ""]
    f = fit.fitted
    if f is not None:
        lines.append(f"Fitted on {f.clips} clips of {f.speakers} speakers ({', '.join(f.corpora)}); {f.protocol}.")
        if f.held_out_uar_before is not None and f.held_out_uar_after is not None:
            lines.append(
                f"Held-out UAR before: {100 * f.held_out_uar_before:.1f} %, after: {100 * f.held_out_uar_after:.1f} % "
                + (
                    f"(learned: {', '.join(f.learned) or 'nothing'})."
                    if f.fusion_written
                    else "(below the margin: the fusion's values are the room's)."
                )
            )
        d = f.disparity
        if d is not None:
            lines.append(
                f"Disparity threshold {d.threshold_before} -> {d.threshold_after} on {d.clips} clips "
                f"({d.disparate} truly disparate): held-out balanced accuracy "
                f"{100 * d.held_out_balanced_accuracy_before:.1f} % -> "
                f"{100 * d.held_out_balanced_accuracy_after:.1f} %"
                + ("." if d.written else " (below the margin: the room keeps its own threshold).")
            )
        lines.append("")
    return [
        *lines,
        f"- weights: {fit.weights}",
        f"- channel temperatures: {fit.channel_temperatures}; fused temperature {fit.temperature}",
        f"- voice cues' tempering: {fit.voice_tempering:.3f}",
        "- disparity threshold: "
        + (str(fit.disparity_threshold) if fit.disparity_threshold is not None else "the room's own"),
        "",
    ]


def model_card(pack: Path, index: PackIndex) -> str:
    lines = [
        f"# Model card: {index.name}",
        "",
        "Every model in this pack maps its output onto eight classes (neutral, calm, happy, sad, angry,",
        "fearful, disgust, surprised). The results describe expressions, not inner states, and do not",
        "diagnose anything. Evidence below comes from `clinic-export verify`.",
        "",
    ]
    for name, model in index.models.items():
        card = model.card
        lines += [f"## {name} ({model.role}, {model.architecture})", ""]
        if card is not None:
            lines += [
                f"- **Data:** {card.data}",
                f"- **Licence:** {card.licence}",
                f"- **Intended use:** {card.intended_use}",
                *(f"- **Known limit:** {limit}" for limit in card.limits),
                "",
            ]
        lines += [
            "| variant | size | accuracy | macro-F1 | top-1 agreement with fp32 | max prob. diff | released |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *_evidence_rows(pack, model),
            "",
        ]
    if index.calibration is not None:
        lines += _calibration_card(index.calibration)
    return "\n".join(lines)
