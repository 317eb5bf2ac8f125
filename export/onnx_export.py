"""PyTorch to ONNX export with a structural check, simplification and a numeric comparison."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from contract.manifest import weights_path
from export.errors import ExportError

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
# A graph with more weights than this keeps them beside it (``<model>.onnx.data``, ONNX external
# data): ONNX Runtime maps such a file into memory instead of reading it, so pages the model never
# touches (most of a text encoder's vocabulary) are never resident, and rooms on one device share
# the rest. The MiniLM text model: 120 MiB resident inline, 61 MiB mapped, after twenty sentences (ONNX Runtime 1.32).
EXTERNAL_WEIGHTS_BYTES = 32 * 2**20


def export_onnx(
    model: nn.Module,
    out: Path,
    *,
    inputs: Mapping[str, tuple[int, ...]],
    outputs: Sequence[str],
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    dtypes: Mapping[str, torch.dtype] | None = None,
    dynamic: Mapping[str, dict[int, str]] | None = None,
) -> Path:
    """Export ``model`` to ONNX with named inputs/outputs and a dynamic batch axis on each.

    Args:
        model: the network, in eval mode; called with the inputs in the order given.
        out: destination ``.onnx`` path; its folder is created.
        inputs: input name -> one item's shape including a batch of 1, e.g. ``{"face": (1, 1, 64, 64)}``.
        outputs: output names, in the order the model returns them.
        opset: ONNX opset.
        simplify: fold constants and fuse patterns with onnxslim (the graph is checked afterwards).
        dtypes: input name -> dtype where not float32 (token ids are int64).
        dynamic: further dynamic axes, e.g. ``{"input_ids": {1: "tokens"}}``.

    Returns:
        ``out``.

    Raises:
        ExportError: the exporter or the simplifier failed, or the ONNX checker rejected the graph.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.partial")
    started = time.monotonic()
    model.eval()
    axes = {name: {0: "batch"} for name in [*inputs, *outputs]}
    for name, extra in (dynamic or {}).items():
        axes[name] = {**axes.get(name, {}), **extra}
    dtypes = dtypes or {}
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns about its own deprecation and constant folding; the
            # graph is checked and compared numerically instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                tuple(torch.ones(shape, dtype=dtypes.get(name, torch.float32)) for name, shape in inputs.items()),
                str(tmp),
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        if simplify:
            import onnxslim  # noqa: PLC0415

            proto = onnxslim.slim(proto)
            onnx.save(proto, str(tmp))
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"ONNX export to {out} failed: {exc}") from exc
    tmp.replace(out)
    logger.info(
        "exported %s in %.1f s (%.1f KiB, opset %d%s)",
        out,
        time.monotonic() - started,
        out.stat().st_size / 1024,
        opset,
        ", simplified" if simplify else "",
    )
    return out


def torch_to_onnx(
    model: nn.Module,
    out: Path,
    *,
    input_name: str,
    output_name: str,
    input_shape: tuple[int, ...],
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Single-input, single-output :func:`export_onnx` without simplification (kept as exported)."""
    return export_onnx(model, out, inputs={input_name: input_shape}, outputs=[output_name], opset=opset, simplify=False)


def externalize_weights(path: Path, min_bytes: int = EXTERNAL_WEIGHTS_BYTES) -> Path | None:
    """Keep the weights of the ONNX model at ``path`` beside it (``<model>.onnx.data``) when there are
    more than ``min_bytes`` of them, inline otherwise; the graph and its outputs are unchanged.
    Returns the weights file, or None when the weights are inline.

    Raises:
        ExportError: the model cannot be read or written.
    """
    weights = weights_path(path)
    try:
        proto = onnx.load(str(path))  # an existing weights file is read in with it
        size = sum(t.ByteSize() for t in proto.graph.initializer)
        with tempfile.TemporaryDirectory(prefix="clinic-weights-", dir=path.parent) as tmp:
            staged = Path(tmp) / path.name
            if size > min_bytes:
                onnx.save_model(
                    proto,
                    str(staged),
                    save_as_external_data=True,
                    all_tensors_to_one_file=True,
                    location=weights.name,
                    size_threshold=1024,
                )
                # readable as the graph is (onnx writes the file owner-only): a room's service user reads both
                weights_path(staged).chmod(staged.stat().st_mode & 0o777)
                shutil.move(str(weights_path(staged)), weights)
            else:
                onnx.save_model(proto, str(staged))
                weights.unlink(missing_ok=True)
            staged.replace(path)
    except Exception as exc:  # onnx and protobuf raise their own hierarchies for unreadable models
        raise ExportError(f"could not write the weights of {path}: {exc}") from exc
    if size <= min_bytes:
        return None
    logger.info("%s: %.1f MiB of weights in %s", path.name, size / 2**20, weights.name)
    return weights
