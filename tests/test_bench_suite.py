"""The benchmark suite's verdicts on the performance targets, from results files of known content
(the suite itself is run by hand: tests never time anything)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import channels
import rooms
import suite


def _rooms(per_device: int, p95_at_4: float | None) -> dict[str, Any]:
    runs = [{"rooms": n, "realtime": True, "latency_p95_ms": 150.0} for n in range(1, per_device + 1)]
    if p95_at_4 is not None and per_device >= 4:
        runs[3]["latency_p95_ms"] = p95_at_4
    return {"rooms_per_device": per_device, "runs": runs}


def _memory(result: dict[str, Any], mib_per_room: float) -> dict[str, Any]:
    for run in result["runs"]:
        run["peak_rss_mib_total"] = run["rooms"] * mib_per_room
    return result


def _failing(result: dict[str, Any]) -> dict[str, Any]:
    result["runs"][-1]["realtime"] = False
    result["rooms_per_device"] -= 1
    return result


def _models(speed: float, agreement: float | None, spread: list[float] | None = None) -> dict[str, Any]:
    variant: dict[str, Any] = {"speedup_vs_fp32_batch1": speed, "top1_agreement_with_fp32": agreement}
    if spread is not None:
        variant["speedup_vs_fp32_batch1_range"] = spread
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


def _hub(rates: list[float], p95s: list[float], pages: list[float] | None = None) -> dict[str, Any]:
    runs = [
        {"workers": 2**i, "stored_per_s": r, "lag_p95_ms": p, "paced_rooms": 1000}
        for i, (r, p) in enumerate(zip(rates, p95s, strict=True))
    ]
    out: dict[str, Any] = {"runs": runs}
    if pages is not None:
        out["dashboard"] = {"sessions": 1_000_000, "pages": {f"/{i}": {"p95_ms": t} for i, t in enumerate(pages)}}
    return out


def _profile(cpu_share: float, rss: float) -> dict[str, Any]:
    return {"profile": {"cpu_share": cpu_share, "rss_mib_peak": rss}}


def _staff(per_device: int, quiet_at_4: float, shed_at_4: int) -> dict[str, Any]:
    result = _rooms(per_device, None)
    if per_device >= 4:
        result["runs"][3].update(latency_p95_quiet_ms=quiet_at_4, utterances_skipped=shed_at_4)
    return result


def _live(delays: list[float]) -> dict[str, Any]:
    return {
        "whisper.cpp": {"live": [{"delays_s": [9.0, 9.0, 9.0]}]},
        "faster-whisper (fitted context, the default)": {"live": [{"delays_s": delays}]},
    }


@pytest.mark.unit
@pytest.mark.parametrize(
    ("results", "target", "measured", "met"),
    [
        ({"profile": _profile(0.18, 700.0)}, "one room at the defaults: <= 20 %", "18.0 %", True),
        ({"profile": _profile(0.23, 700.0)}, "one room at the defaults: <= 20 %", "23.0 %", False),
        ({"profile": _profile(0.18, 700.0)}, "one room at the defaults: <= 450 MiB", "700.0 MiB", False),
        ({"profile-mjpeg": _profile(0.18, 420.0)}, "USB camera delivers it (Motion JPEG): <= 450", "420.0 MiB", True),
        ({"profile-mjpeg": _profile(0.18, 470.0)}, "USB camera delivers it (Motion JPEG): <= 450", "470.0 MiB", False),
        ({"rooms-staff": _staff(5, 120.0, 0)}, ">= 5 rooms in real time at the defaults", "5 rooms", True),
        ({"rooms-staff": _staff(4, 120.0, 0)}, ">= 5 rooms in real time at the defaults", "4 rooms", False),
        ({"rooms-staff": _staff(4, 120.0, 0)}, "without client speech, at 4 rooms", "120.0 ms", True),
        ({"rooms-staff": _staff(4, 420.0, 0)}, "without client speech, at 4 rooms", "420.0 ms", False),
        ({"rooms-staff": _staff(3, 120.0, 0)}, "without client speech, at 4 rooms", "not reached", None),
        ({"rooms-staff": _staff(4, 120.0, 2)}, "no speech shed at 4 rooms", "2 stretches", False),
        ({"rooms-staff": _staff(5, 120.0, 0)}, "no speech shed at 4 rooms", "0 stretches", True),
        ({"transcribe": _live([1.0, 2.5, 4.0])}, "words readable", "2.5 s", True),  # whisper.cpp's row not read
        ({"transcribe": _live([3.0, 3.6, 7.0])}, "words readable", "3.6 s", False),
        ({"hub-scale": _hub([1500.0, 3100.0], [300.0, 120.0])}, ">= 3000 summaries/s", "3100/s with 2 worker", True),
        ({"hub-scale": _hub([1500.0, 2900.0], [300.0, 120.0])}, ">= 3000 summaries/s", "2900/s with 2 worker", False),
        ({"hub-scale": _hub([1500.0, 3100.0], [300.0, 120.0])}, "publish -> committed", "300 ms (worst of 2", True),
        ({"hub-scale": _hub([1500.0], [650.0])}, "publish -> committed", "650 ms", False),
        ({"hub-scale": _hub([1.0], [1.0], [40.0, 150.0])}, "dashboard page p95", "150 ms (slowest of 2", True),
        ({"hub-scale": _hub([1.0], [1.0], [40.0, 250.0])}, "dashboard page p95", "250 ms", False),
        ({"rooms": _rooms(5, 250.0)}, ">= 4 rooms", "5 rooms", True),
        ({"rooms": _rooms(3, None)}, ">= 4 rooms", "3 rooms", False),
        ({"rooms": {**_rooms(2, None), "limited": True}}, ">= 4 rooms", "at least 2 rooms", None),
        ({"rooms": _rooms(1, None)}, ">= 4 rooms", "1 room", False),
        ({"rooms-nowords": _rooms(5, 250.0)}, "p95 window end", "250.0 ms", True),
        ({"rooms-nowords": _rooms(5, 321.5)}, "p95 window end", "321.5 ms", False),
        ({"rooms-nowords": _rooms(3, None)}, "p95 window end", "not reached", None),
        ({"rooms": _rooms(5, 321.5)}, "p95 under 300 ms (as configured", "3 rooms", None),
        (
            {"rooms": _memory(_rooms(5, 350.0), 345.0), "rooms-one-process": _memory(_rooms(4, 600.0), 136.25)},
            "one process sharing the models",
            "4 rooms: memory 545.0 against 1380.0 MiB (2.53x less), p95 600.0 against 350.0 ms; "
            "real time 4 rooms against 5 rooms",
            None,
        ),
        (  # the largest count both ran in real time, not the first that failed
            {
                "rooms": _memory(_rooms(3, None), 345.0),
                "rooms-one-process": _memory(_failing(_rooms(3, None)), 150.0),
            },
            "one process sharing the models",
            "2 rooms: memory 300.0 against 690.0 MiB (2.30x less)",
            None,
        ),
        ({"models": _models(1.6, 0.995)}, "INT8 >= 1.5x", "1.6x, 99.5 %", True),
        ({"models": _models(1.6, 0.975)}, "INT8 >= 1.5x", "1.6x, 97.5 %", False),
        ({"models": _models(0.61, 1.0)}, "INT8 >= 1.5x", "0.61x, 100.0 %", False),
        ({"models": _models(1.6, None)}, "INT8 >= 1.5x", "1.6x, n/a", None),
        ({"models": _models(1.52, 1.0, [1.41, 1.7])}, "INT8 >= 1.5x", "1.52x (rounds 1.41-1.7x), 100.0 %", True),
        ({"fer-baseline": _fer(12.0, 54.0)}, "faster than the fer", "4.50x faster", True),
        ({"fer-baseline": _fer(60.0, 54.0)}, "faster than the fer", "0.90x faster", False),
    ],
)
def test_targets(results: dict[str, Any], target: str, measured: str, met: bool | None) -> None:
    rows = [t for t in suite.targets(results) if t["target"].startswith(target) or target in t["target"]]
    assert len(rows) == 1, rows
    assert measured in rows[0]["measured"]
    assert rows[0]["met"] is met


@pytest.mark.unit
def test_only_cnns_have_an_int8_target() -> None:
    rows = suite.targets({"models": _models(2.0, 1.0)})
    assert [t["target"].rsplit(": ", 1)[1] for t in rows] == ["face-cnn (ONNX Runtime, batch 1)"]


@pytest.mark.unit
def test_sharing_is_compared_only_when_both_ways_ran() -> None:
    rows = suite.targets({"rooms": _memory(_rooms(4, 250.0), 345.0)})
    assert not [t for t in rows if "one process" in t["target"]]


def _run(p95: float, *, realtime: bool = True, fps: float = 9.9, dropped: int = 0) -> dict[str, Any]:
    return {
        "rooms": 3,
        "realtime": realtime,
        "fps_min": fps,
        "frames_dropped": dropped,
        "windows_dropped": 0,
        "summaries": 165,
        "latency_p50_ms": p95 / 2,
        "latency_p95_ms": p95,
        "latency_p99_ms": p95 * 1.2,
        "peak_rss_mib_per_room": 340.0 + p95 / 100,
        "peak_rss_mib_total": 1020.0 + p95 / 100,
        "cpu_share": 0.6,
    }


@pytest.mark.unit
@pytest.mark.parametrize(
    ("repeats", "realtime", "fps", "dropped", "p95", "p95_range"),
    [
        ([_run(200.0)], True, 9.9, 0, 200.0, None),  # one run is its own row
        ([_run(200.0), _run(260.0)], True, 9.9, 0, 230.0, [200.0, 260.0]),
        (
            [_run(200.0), _run(300.0, realtime=False, fps=9.2, dropped=12), _run(240.0)],
            False,
            9.2,
            12,
            240.0,
            [200.0, 300.0],
        ),
    ],
)
def test_repeated_room_runs_combine_to_the_worst_case_and_median(
    repeats: list[dict[str, Any]], realtime: bool, fps: float, dropped: int, p95: float, p95_range: list[float] | None
) -> None:
    row = rooms.combine(repeats)
    assert (row["realtime"], row["fps_min"], row["frames_dropped"], row["latency_p95_ms"]) == (
        realtime,
        fps,
        dropped,
        p95,
    )
    assert row.get("latency_p95_range_ms") == p95_range
    assert row["peak_rss_mib_total"] == max(r["peak_rss_mib_total"] for r in repeats)


@pytest.mark.unit
@pytest.mark.parametrize("step", [s for s in suite.STEPS if s.script == "rooms.py"], ids=lambda s: s.name)
@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_every_rooms_step_writes_the_results_the_suite_reads(step: suite.Step, quick: bool) -> None:
    """The suite finds a step's results by the step's name; rooms.py names its file after the
    set-up its arguments ask for. A step whose arguments named another file would leave its row
    empty (or show an older run)."""
    _args, setup = rooms.parse([*step.args, *(step.quick if quick else ())])
    assert setup.name() == step.name


@pytest.mark.unit
@pytest.mark.parametrize("setup", list(channels.SETUPS), ids=str)
def test_every_channels_setup_is_a_valid_room_configuration(setup: str, tmp_path: Path) -> None:
    """The channels step runs each set-up as a room; one the room's configuration refuses (a field
    renamed, a rule added, such as the pack's trusted keys) would fail only when the suite is run."""
    config = channels.setup_config(channels.SETUPS[setup], tmp_path)
    assert config.models.pack == channels.PACK
    assert config.models.trusted_keys == [channels.PACK_KEY]
