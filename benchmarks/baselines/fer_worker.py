"""Runs inside the ``fer`` package's own environment (TensorFlow; see benchmarks/fer_baseline.py).

Reads frames from standard input (one JSON header line ``{"frames": n, "height": h, "width": w}``,
then n RGB frames of h*w*3 bytes), runs ``fer.FER().detect_emotions`` on each (as its users call it:
BGR frames, the package's defaults) and prints one JSON line per configuration with the
milliseconds and the top emotion of the largest face per frame. Imports nothing from this project.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main() -> int:
    header = json.loads(sys.stdin.buffer.readline())
    n, h, w = header["frames"], header["height"], header["width"]
    raw = sys.stdin.buffer.read(n * h * w * 3)
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(n, h, w, 3)
    bgr = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]  # what cv2 would have given fer
    from fer.fer import FER

    setups = (("fer (Haar + TFLite int8, defaults)", {}), ("fer (Haar + Keras fp32)", {"use_tflite": False}))
    for name, kwargs in setups:
        detector = FER(**kwargs)
        for frame in bgr[:5]:  # warm-up
            detector.detect_emotions(frame)
        ms, labels = [], []
        for frame in bgr:
            t0 = time.perf_counter()
            faces = detector.detect_emotions(frame)
            ms.append((time.perf_counter() - t0) * 1e3)
            if faces:
                best = max(faces, key=lambda f: f["box"][2] * f["box"][3])
                labels.append(max(best["emotions"], key=best["emotions"].get))
            else:
                labels.append(None)
        sys.stdout.write(json.dumps({"pipeline": name, "ms": ms, "labels": labels}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
