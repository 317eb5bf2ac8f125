"""The room's face path against the ``fer`` package's own pipeline, on the same frames.

``fer`` is what a developer would otherwise pick: ``FER().detect_emotions(frame)`` finds faces with
OpenCV's Haar cascade and classifies them with its FER2013 mini-Xception, by default the package's
TensorFlow Lite int8 copy (``use_tflite=False``: the Keras FP32 original). The room's face path runs
the same network as ONNX (the default pack's ``face-fer-minixception``) behind MediaPipe's face
detector, with alignment (also with detection every third frame, the INT8 variant, and MediaPipe's
short-range detector); both are given the demo clip's frames exactly as the room's capture
produces them (decoded once here, at the room's analysis rate and width) and both are timed per
frame from RGB array to emotion. ``fer`` runs in its own environment (``build/fer-venv``, TensorFlow,
made from ``benchmarks/baselines/fer-requirements.txt`` on first use) and receives the frames
through a pipe; nothing is written to disk.

Each pipeline runs ``--repeats`` times; the table gives the mean milliseconds per frame (the median of
the runs and their spread), the 95th percentile of single frames, the ratio against the room's
default face path, the frames with a face, and, on frames where both found a face, how often their
top emotion agrees.

Usage: .venv/bin/python benchmarks/fer_baseline.py [--repeats 3] [--clip build/demo/demo.mkv]
Writes benchmarks/results/fer-baseline-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "build" / "demo" / "demo.mkv"
PACK = ROOT / "build" / "models" / "pack" / "face-fer-minixception"
VENV = ROOT / "build" / "fer-venv"
WORKER = ROOT / "benchmarks" / "baselines" / "fer_worker.py"
REQUIREMENTS = ROOT / "benchmarks" / "baselines" / "fer-requirements.txt"
FER_VERSION = "25.10.3"


def fer_python() -> Path:
    """The fer environment's interpreter, made on first use from PyPI (a benchmark set-up step)."""
    python = VENV / "bin" / "python"
    if not python.is_file():
        print(f"== making {VENV} (TensorFlow and fer {FER_VERSION}; a few minutes, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        subprocess.run([*pip, "--no-deps", f"fer=={FER_VERSION}"], check=True)
    return python


def decode(clip: Path) -> list[np.ndarray]:
    """The clip's frames as the room's capture yields them (analysis rate and width from the
    room's defaults), in memory."""
    from edge.capture.pipeline import GstCapture
    from edge.capture.source import parse_source
    from edge.config.models import CaptureConfig

    frames: list[np.ndarray] = []
    with GstCapture.from_config(parse_source(clip.as_uri()), CaptureConfig(), realtime_files=False) as capture:
        while True:
            while capture.audio.get_nowait() is not None:  # the face paths need no sound
                pass
            frame = capture.video.get(timeout=0.2)
            if frame is not None:
                frames.append(frame.rgb.copy())
            elif capture.eos.is_set() and capture.video.qsize() == 0:
                break
    if not frames:
        raise SystemExit(f"no frames decoded from {clip}")
    return frames


def ours(frames: list[np.ndarray], detect_every: int, precision: str, detector_range: str = "full") -> dict[str, Any]:
    from contract.classes import CLASSES
    from edge.analysis.frame import FrameAnalyzer
    from edge.capture.frames import VideoFrame
    from edge.channels.face import FaceFrameHook
    from edge.config.models import OnnxRuntimeBackendConfig, VisionConfig
    from edge.inference import FaceExpressionModel, create_engine, load_manifest
    from edge.vision import FaceDetector

    config = VisionConfig(detect_every=detect_every, detector_range=detector_range)
    model_path = PACK / f"face-fer-minixception.{precision}.onnx"
    model = FaceExpressionModel(create_engine(model_path, load_manifest(model_path), [OnnxRuntimeBackendConfig()]))
    hooks = [FaceFrameHook(model, config)]
    analyzer = FrameAnalyzer(FaceDetector(config.detector_range, config.min_detection_confidence), config, hooks=hooks)
    for i, rgb in enumerate(frames[:5]):  # warm-up
        analyzer.analyze(VideoFrame(i / 10, rgb))
    analyzer = FrameAnalyzer(analyzer.detector, config, hooks=[FaceFrameHook(model, config)])
    ms, labels = [], []
    for i, rgb in enumerate(frames):
        t0 = time.perf_counter()
        result = analyzer.analyze(VideoFrame(i / 10, rgb))
        ms.append((time.perf_counter() - t0) * 1e3)
        labels.append(None if result.probs is None else CLASSES[int(np.argmax(result.probs))])
    return {"ms": ms, "labels": labels}


def fer_runs(frames: list[np.ndarray]) -> list[dict[str, Any]]:
    from export.fer_face import FER_TO_PRODUCT  # fer's labels -> the product's, as the face channel maps them

    h, w = frames[0].shape[:2]
    header = json.dumps({"frames": len(frames), "height": h, "width": w}).encode() + b"\n"
    payload = header + b"".join(f.tobytes() for f in frames)
    done = subprocess.run(
        [str(fer_python()), str(WORKER)],
        input=payload,
        capture_output=True,
        check=False,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    if done.returncode != 0:
        raise SystemExit(f"fer worker failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
    rows = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    for row in rows:
        row["labels"] = [None if x is None else FER_TO_PRODUCT[x] for x in row["labels"]]
    return rows


def summarise(name: str, runs: list[dict[str, Any]], reference: list[str | None] | None) -> dict[str, Any]:
    means = [statistics.fmean(r["ms"]) for r in runs]  # the mean is the throughput figure
    labels = runs[-1]["labels"]
    row: dict[str, Any] = {
        "pipeline": name,
        "ms_per_frame_mean": round(statistics.median(means), 2),
        "ms_per_frame_spread": [round(min(means), 2), round(max(means), 2)],
        "ms_per_frame_p95": round(statistics.median(float(np.percentile(r["ms"], 95)) for r in runs), 2),
        "frames": len(labels),
        "frames_with_face": sum(x is not None for x in labels),
    }
    if reference is not None:
        both = [(a, b) for a, b in zip(labels, reference, strict=True) if a is not None and b is not None]
        row["top1_agreement_with_room"] = round(sum(a == b for a, b in both) / len(both), 3) if both else None
        row["frames_compared"] = len(both)
    return row


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']}, TensorFlow {m['tensorflow']} (fer "
        f"{FER_VERSION}) ({results['date']}). {results['clip']}; {results['repeats']} runs per pipeline, "
        "mean ms per frame (median of the runs, and their spread); p95 of single frames. fer runs with "
        "TensorFlow's own thread pools, the room with one ONNX Runtime thread.",
        "",
        "| face path | ms/frame | spread | p95 | frames/s | x vs room default | frames with a face | "
        "top-1 agreement with room |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base = results["rows"][0]["ms_per_frame_mean"]
    for row in results["rows"]:
        ms = row["ms_per_frame_mean"]
        agreement = row.get("top1_agreement_with_room")
        agreed = "-" if agreement is None else f"{agreement:.3f} ({row['frames_compared']} frames)"
        lines.append(
            f"| {row['pipeline']} | {ms} | {row['ms_per_frame_spread'][0]}-{row['ms_per_frame_spread'][1]} | "
            f"{row['ms_per_frame_p95']} | {1000 / ms:.1f} | {ms / base:.2f}x | "
            f"{row['frames_with_face']}/{row['frames']} | "
            f"{agreed} |"
        )
    lines += [
        "",
        "x vs room default: this path's time per frame over the room's default face path (above 1: slower "
        "than the room).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clip", type=Path, default=DEMO)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    frames = decode(args.clip)
    h, w = frames[0].shape[:2]
    print(f"== {len(frames)} frames {w}x{h} from {args.clip.name}", flush=True)
    ours_setups: dict[str, tuple[Any, ...]] = {
        "room: MediaPipe + ONNX fp32 (default)": (1, "fp32"),
        "room: detection every 3rd frame": (3, "fp32"),
        "room: ONNX int8": (1, "int8"),
        "room: short-range detector (faces within about 2 m)": (1, "fp32", "short"),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ours_setups}
    fer_names: list[str] = []
    for repeat in range(args.repeats):
        print(f"== run {repeat + 1}/{args.repeats}", flush=True)
        for name, setup in ours_setups.items():
            runs[name].append(ours(frames, *setup))
        for row in fer_runs(frames):
            runs.setdefault(row["pipeline"], []).append(row)
            if row["pipeline"] not in fer_names:
                fer_names.append(row["pipeline"])
    reference = runs["room: MediaPipe + ONNX fp32 (default)"][-1]["labels"]
    rows = [summarise(name, r, None if i == 0 else reference) for i, (name, r) in enumerate(runs.items())]
    version = subprocess.run(
        [str(fer_python()), "-c", "import tensorflow as tf; print(tf.__version__)"],
        capture_output=True,
        text=True,
        check=False,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "clip": f"{args.clip.name}: {len(frames)} frames, {w}x{h}",
        "repeats": args.repeats,
        "machine": machine(tensorflow=version, fer=FER_VERSION),
        "rows": rows,
    }
    write_results(args.out, "fer-baseline", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
