"""The models benchmark's operator breakdown: profile events of known content, and a real ONNX Runtime
profile of a small FP32 model and its Q/DQ INT8 variant (counted, never timed against a bound)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import models as bench_models

from export.models.blocks import WithProbabilities
from export.models.physio import RppgCNN1D
from export.onnx_export import export_onnx
from export.precision import quantize_int8


def _event(name: str, op: str, dur: float, ts: float) -> dict[str, Any]:
    return {"cat": "Node", "name": f"{name}_kernel_time", "dur": dur, "ts": ts, "args": {"op_name": op}}


# Two calls each: (node, op, microseconds in call 1, in call 2), in execution order.
CASES = [
    (
        "fp32 convolutions, pooling and the rest",
        [
            ("c1", "FusedConv", 90, 100),
            ("p1", "MaxPool", 10, 10),
            ("c2", "Conv", 300, 310),
            ("g", "Gemm", 5, 5),
            ("s", "Softmax", 4, 4),
        ],
        {"first_conv": 95.0, "products": 310.0, "quantize": 0.0, "pooling": 10.0, "other": 4.0},
    ),
    (
        "int8: the input quantized before the first convolution",
        [
            ("q", "QuantizeLinear", 20, 20),
            ("c1", "QLinearConv", 500, 600),
            ("d", "DequantizeLinear", 8, 8),
            ("p", "NhwcMaxPool", 30, 30),
            ("t", "Transpose", 6, 6),
            ("c2", "QLinearConv", 200, 200),
        ],
        {"first_conv": 550.0, "products": 200.0, "quantize": 28.0, "pooling": 30.0, "other": 6.0},
    ),
    (
        "a model without convolutions",
        [("m", "MatMul", 3, 3), ("a", "Add", 1, 1)],
        {"first_conv": 0.0, "products": 3.0, "quantize": 0.0, "pooling": 0.0, "other": 1.0},
    ),
]


@pytest.mark.unit
@pytest.mark.parametrize(("label", "nodes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_operator_breakdown(label: str, nodes: list[tuple[str, str, float, float]], expected: dict[str, float]) -> None:
    events: list[dict[str, Any]] = [{"cat": "Session", "name": "model_run", "dur": 999, "ts": 0}]
    for call in range(2):
        for order, (name, op, *durations) in enumerate(nodes):
            events.append(_event(name, op, durations[call], ts=1000 * call + order))
    assert bench_models.operator_breakdown(events) == expected


@pytest.mark.unit
def test_the_first_convolution_is_the_first_to_run_not_the_first_listed() -> None:
    events = [_event("late", "Conv", 5, ts=50), _event("early", "Conv", 7, ts=10)]
    assert bench_models.operator_breakdown(events)["first_conv"] == 7.0


@pytest.fixture(scope="module")
def rppg_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pack of a small real model, FP32 and its calibrated Q/DQ INT8 variant."""
    pack = tmp_path_factory.mktemp("pack")
    folder = pack / "rppg"
    net = RppgCNN1D().eval()
    fp32 = export_onnx(
        WithProbabilities(net),
        folder / "rppg.fp32.onnx",
        inputs={"x": (1, 1, 75)},
        outputs=["probabilities", "embedding"],
    )
    calibration = np.random.default_rng(0).normal(size=(16, 1, 75)).astype(np.float32)
    quantize_int8(fp32, folder / "rppg.int8.onnx", {"x": calibration})
    variants = {p: f"rppg/rppg.{p}.onnx" for p in ("fp32", "int8")}
    index = {"models": {"rppg": {"architecture": "rppg-cnn1d", "variants": variants}}}
    (pack / "pack.json").write_text(json.dumps(index))
    for rel in variants.values():
        manifest = {"input": {"name": "x", "shape": ["batch", 1, 75]}}
        (pack / rel).with_suffix(".json").write_text(json.dumps(manifest))
    return pack


@pytest.mark.unit
def test_a_real_profile_separates_the_int8_conversions(
    rppg_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where ONNX Runtime would leave a profile with no prefix set
    feeds = {"x": np.random.default_rng(1).normal(size=(1, 1, 75)).astype(np.float32)}

    before = bench_models._operators(rppg_pack / "rppg" / "rppg.fp32.onnx", feeds, runs=5)
    after = bench_models._operators(rppg_pack / "rppg" / "rppg.int8.onnx", feeds, runs=5)

    assert set(before) == set(after) == set(bench_models.BREAKDOWN)
    assert before["quantize"] == 0.0
    assert after["quantize"] > 0.0
    for breakdown in (before, after):
        assert breakdown["first_conv"] > 0.0
        assert breakdown["products"] > 0.0  # two more convolutions and the classifier
        assert breakdown["pooling"] > 0.0
    assert not list(tmp_path.iterdir()), "no profile left behind"


@pytest.mark.unit
def test_pack_measurement_gives_every_speed_up_with_its_rounds(rppg_pack: Path) -> None:
    row = bench_models.measure_pack_model(rppg_pack, "rppg", runs=3, rounds=3)

    fp32, int8 = row["variants"]["fp32"], row["variants"]["int8"]
    assert fp32["speedup_vs_fp32_batch1"] == fp32["speedup_vs_fp32_batch8"] == 1.0
    for batch in (1, 8):
        low, high = int8[f"speedup_vs_fp32_batch{batch}_range"]
        assert 0 < low <= int8[f"speedup_vs_fp32_batch{batch}"] <= high
    assert set(int8["batch1_operators_us"]) == set(bench_models.BREAKDOWN)

    row.update(parameters=18_776, heldout_items=0, data="none")
    text = bench_models.markdown(
        {
            "machine": {"cpus": 2, "machine": "x86_64", "python": "3.11", "onnxruntime": "1.31"},
            "date": "today",
            "runs": 3,
            "rounds": 3,
            "models": [row],
        }
    )
    low, high = int8["speedup_vs_fp32_batch1_range"]
    assert f"| {int8['speedup_vs_fp32_batch1']}x ({low}-{high}) / " in text
    first = f"{fp32['batch1_operators_us']['first_conv']:g} -> {int8['batch1_operators_us']['first_conv']:g}"
    assert f"| rppg | {first} | " in text
