"""PyTorch to ONNX export with a structural check, simplification and a numeric comparison."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from export.errors import ExportError

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17


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
