"""The benchmark suite's verdicts on the performance targets, from results files of known content
(the suite itself is run by hand: tests never time anything)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite


def _rooms(per_device: int, p95_at_4: float | None) -> dict[str, Any]:
    runs = [{"rooms": n, "realtime": True, "latency_p95_ms": 150.0} for n in range(1, per_device + 1)]
    if p95_at_4 is not None and per_device >= 4:
        runs[3]["latency_p95_ms"] = p95_at_4
    return {"rooms_per_device": per_device, "runs": runs}


def _models(speed: float, agreement: float | None) -> dict[str, Any]:
    variant = {"speedup_vs_fp32_batch1": speed, "top1_agreement_with_fp32": agreement}
    return {
        "models": [
            {"model": "face-cnn", "variants": {"int8": variant}},
            {"model": "fusion-late", "variants": {"int8": variant}},  # not a CNN: no INT8 target
        ]
    }


def _fer(room_ms: float, fer_ms: float) -> dict[str, Any]:
    return {
        "rows": [
            {"pipeline": "room: MediaPipe + ONNX fp32 (default)", "ms_per_frame_mean": room_ms},
            {"pipeline": "fer (Haar + TFLite int8, defaults)", "ms_per_frame_mean": fer_ms},
        ]
    }


@pytest.mark.parametrize(
    ("results", "target", "measured", "met"),
    [
        ({"rooms": _rooms(5, 250.0)}, ">= 4 rooms", "5 rooms", True),
        ({"rooms": _rooms(3, None)}, ">= 4 rooms", "3 rooms", False),
        ({"rooms": {**_rooms(2, None), "limited": True}}, ">= 4 rooms", "at least 2 rooms", None),
        ({"rooms": _rooms(1, None)}, ">= 4 rooms", "1 room", False),
        ({"rooms": _rooms(5, 250.0)}, "p95 window end", "250.0 ms", True),
        ({"rooms": _rooms(5, 321.5)}, "p95 window end", "321.5 ms", False),
        ({"rooms": _rooms(3, None)}, "p95 window end", "not reached", None),
        ({"rooms": _rooms(5, 321.5)}, "p95 under 300 ms (as configured", "3 rooms", None),
        ({"models": _models(1.6, 0.995)}, "INT8 >= 1.5x", "1.6x, 99.5 %", True),
        ({"models": _models(1.6, 0.975)}, "INT8 >= 1.5x", "1.6x, 97.5 %", False),
        ({"models": _models(0.61, 1.0)}, "INT8 >= 1.5x", "0.61x, 100.0 %", False),
        ({"models": _models(1.6, None)}, "INT8 >= 1.5x", "1.6x, n/a", None),
        ({"fer-baseline": _fer(12.0, 54.0)}, "faster than the fer", "4.50x faster", True),
        ({"fer-baseline": _fer(60.0, 54.0)}, "faster than the fer", "0.90x faster", False),
    ],
)
def test_targets(results: dict[str, Any], target: str, measured: str, met: bool | None) -> None:
    rows = [t for t in suite.targets(results) if t["target"].startswith(target) or target in t["target"]]
    assert len(rows) == 1, rows
    assert measured in rows[0]["measured"]
    assert rows[0]["met"] is met


def test_only_cnns_have_an_int8_target() -> None:
    rows = suite.targets({"models": _models(2.0, 1.0)})
    assert [t["target"].rsplit(": ", 1)[1] for t in rows] == ["face-cnn (ONNX Runtime, batch 1)"]
