"""Reduced-precision variants of an FP32 ONNX model: INT8 (explicit Q/DQ) and FP16.

INT8 follows the explicit-quantization path TensorRT 10 recommends and TensorRT 11 requires:
QuantizeLinear/DequantizeLinear pairs in the graph, scales from calibration data (ONNX Runtime's
static quantizer, min-max over the calibration set), symmetric signed 8-bit activations and
per-channel symmetric weights. Weights use 7 of their 8 bits by default (``reduce_range``): x86
CPUs without VNNI compute int8 products through 16-bit intermediates that saturate at full range
(measured on the fer model: 85 % top-1 agreement with FP32 at full range, 97.5 % reduced, where the
exactly simulated graph gives 97.5 % either way); TensorRT runs both. Only convolutions and
matrix products are quantized, except a classifier whose logits feed a softmax; softmax, sigmoid,
normalisation and the other precision-sensitive operations stay in float. FP16 converts weights
and activations to half precision and keeps float32 inputs and outputs so the room feeds every
variant the same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from export.errors import ExportError

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

logger = logging.getLogger(__name__)

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
FLOAT_OPS = ("Softmax", "Sigmoid", "LayerNormalization", "ReduceMean", "Log", "Exp", "Div", "Pow", "Sqrt")
FP16_FLOAT_OPS = ("Softmax", "Log", "Exp")


class _Reader:
    """ONNX Runtime calibration reader over in-memory batches."""

    def __init__(self, batches: Iterator[dict[str, npt.NDArray[np.float32]]]) -> None:
        self._batches = batches

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._batches, None)


def load_calibration(folder: Path, input_names: list[str]) -> dict[str, npt.NDArray[np.float32]]:
    """Calibration inputs from ``folder/calibration.npz``.

    For a single-input model the file's ``x`` feeds it; a fusion head's second input, ``present``,
    comes from the key of that name.

    Raises:
        ExportError: no calibration data, which is never silently replaced by random inputs.
    """
    path = folder / "calibration.npz"
    if not path.is_file():
        raise ExportError(
            f"INT8 needs calibration data and {path} does not exist; put representative inputs there "
            "(`clinic-export train` writes calibration.npz into its run folder; see export/int8/README.md)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            feeds = {input_names[0]: npz["x"].astype(np.float32)}
            for name in input_names[1:]:
                feeds[name] = npz[name].astype(np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise ExportError(f"calibration data {path} is unusable for inputs {input_names}: {exc}") from None
    count = next(iter(feeds.values())).shape[0]
    if count == 0:
        raise ExportError(f"calibration data {path} is empty")
    return feeds


def _float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes kept in float: the precision-sensitive operations and the layers that produce their
    inputs (the classifier whose logits a softmax reads), so no Q/DQ pair rounds the logits."""
    nodes = list(model.graph.node)
    producers = {out: n for n in nodes for out in n.output}
    keep = {n.name for n in nodes if n.op_type in FLOAT_OPS}
    for node in nodes:
        if node.op_type in ("Softmax", "Sigmoid", "Log"):
            for name in node.input:
                producer = producers.get(name)
                if producer is not None and producer.op_type in QUANTIZED_OPS:
                    keep.add(producer.name)
    return sorted(keep)


def quantize_int8(
    fp32: Path,
    out: Path,
    calibration: Mapping[str, npt.NDArray[np.float32]],
    *,
    batch: int = 8,
    reduce_range: bool = True,
) -> Path:
    """Write the Q/DQ INT8 variant of ``fp32``, calibrated on ``calibration``.

    Args:
        fp32: the float model.
        out: destination ``.onnx``.
        calibration: input name -> calibration items (same count for every input).
        batch: items per calibration batch.
        reduce_range: 7-bit weights, for CPUs whose int8 kernels saturate (see the module doc).

    Raises:
        ExportError: no calibration items, or ONNX Runtime's quantizer failed.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static  # noqa: PLC0415
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415

    count = min(v.shape[0] for v in calibration.values()) if calibration else 0
    if count == 0:
        raise ExportError("INT8 quantization was asked for without calibration data; refusing")
    started = time.monotonic()
    batches = (
        {name: np.ascontiguousarray(v[i : i + batch]) for name, v in calibration.items()}
        for i in range(0, count, batch)
    )
    with tempfile.TemporaryDirectory(prefix="clinic-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            float_nodes = _float_nodes(onnx.load(str(prepared)))
            extra: dict[str, Any] = {"ActivationSymmetric": True, "WeightSymmetric": True}
            quantize_static(
                str(prepared),
                str(out),
                _Reader(batches),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                nodes_to_exclude=float_nodes,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options=extra,
            )
            onnx.checker.check_model(onnx.load(str(out)), full_check=True)
        except ExportError:
            raise
        except Exception as exc:
            out.unlink(missing_ok=True)
            raise ExportError(f"INT8 quantization of {fp32} failed: {exc}") from exc
    logger.info(
        "INT8 %s from %d calibration items in %.1f s (%.1f KiB)",
        out,
        count,
        time.monotonic() - started,
        out.stat().st_size / 1024,
    )
    return out


WEIGHT_BLOCK = 32  # values per scale in a weight-only INT8 matrix


def quantize_weights_int8(fp32: Path, out: Path, *, block_size: int = WEIGHT_BLOCK) -> Path:
    """Write the weight-only INT8 variant of ``fp32``: every MatMul with a constant weight becomes a
    ``MatMulNBits`` with symmetric 8-bit blocks of ``block_size`` (see the module doc); the rest of
    the graph is unchanged. Runs on ONNX Runtime only (TensorRT has no such operator).

    Raises:
        ExportError: the graph has no matrix product with constant weights, or the quantizer failed.
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import (  # noqa: PLC0415
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    started = time.monotonic()
    try:
        config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=8)
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(fp32)), bits=8, block_size=block_size, is_symmetric=True, algo_config=config
        )
        quantizer.process()
        model = quantizer.model.model
        if not any(node.op_type == "MatMulNBits" for node in model.graph.node):
            raise ExportError(f"{fp32} has no matrix product with constant weights to quantize")
        onnx.save(model, str(out))
    except ExportError:
        raise
    except Exception as exc:
        out.unlink(missing_ok=True)
        raise ExportError(f"weight-only INT8 quantization of {fp32} failed: {exc}") from exc
    logger.info("INT8 (weights) %s in %.1f s", out, time.monotonic() - started)
    return out


def _float_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give a half-precision graph float32 inputs and outputs with Cast nodes at its edges.

    (onnxconverter-common's own ``keep_io_types`` mislabels an output that another node also reads,
    such as the embedding the classifier consumes.)
    """
    graph = model.graph
    half, full = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT

    def rename(old: str, new: str) -> None:
        for node in graph.node:
            node.input[:] = [new if n == old else n for n in node.input]
            node.output[:] = [new if n == old else n for n in node.output]
        for info in graph.value_info:
            if info.name == old:
                info.name = new

    casts_in = []
    for tensor in graph.input:
        if tensor.type.tensor_type.elem_type == half:
            rename(tensor.name, f"{tensor.name}__fp16")
            casts_in.append(onnx.helper.make_node("Cast", [tensor.name], [f"{tensor.name}__fp16"], to=half))
            tensor.type.tensor_type.elem_type = full
    for tensor in graph.output:
        if tensor.type.tensor_type.elem_type == half:
            rename(tensor.name, f"{tensor.name}__fp16")
            graph.node.append(onnx.helper.make_node("Cast", [f"{tensor.name}__fp16"], [tensor.name], to=full))
            tensor.type.tensor_type.elem_type = full
    for i, cast in enumerate(casts_in):
        graph.node.insert(i, cast)
    return model


def convert_fp16(fp32: Path, out: Path) -> Path:
    """Write the FP16 variant of ``fp32`` with float32 inputs and outputs.

    Softmax, logarithms and exponentials stay in float32 (``FP16_FLOAT_OPS``).
    """
    from onnxconverter_common import float16  # noqa: PLC0415

    started = time.monotonic()
    try:
        half = float16.convert_float_to_float16(
            onnx.load(str(fp32)), keep_io_types=False, op_block_list=list(FP16_FLOAT_OPS)
        )
        # The converter leaves stale intermediate types around the casts it adds for kept-float
        # operations; the checker's full check infers them again from the graph.
        del half.graph.value_info[:]
        half = _float_io(half)
        onnx.checker.check_model(half, full_check=True)
        onnx.save(half, str(out))
    except Exception as exc:
        out.unlink(missing_ok=True)
        raise ExportError(f"FP16 conversion of {fp32} failed: {exc}") from exc
    logger.info("FP16 %s in %.1f s (%.1f KiB)", out, time.monotonic() - started, out.stat().st_size / 1024)
    return out


def count_qdq(path: Path) -> dict[str, int]:
    """Operator counts that show a graph's precision (Q/DQ pairs, casts)."""
    ops: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {k: ops.get(k, 0) for k in ("QuantizeLinear", "DequantizeLinear", "Cast", "MatMulNBits")}
