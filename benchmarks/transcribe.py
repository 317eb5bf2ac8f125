"""Transcription on this machine: word error rate and real-time factor of whisper.cpp (the converted
ggml file) and faster-whisper (the packaged CTranslate2 folder) on the same recording (jfk.wav,
public domain, 11 s), repeated; voice activity detection on, 2 threads each.

Usage: .venv/bin/python benchmarks/transcribe.py [--repeats 5]
Writes benchmarks/results/transcribe-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from results_io import write_results

ROOT = Path(__file__).resolve().parents[1]
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ggml", type=Path, default=ROOT / "build" / "models" / "whisper-tiny.en.ggml.bin")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from edge.transcribe import create_transcriber
    from edge.transcribe.wer import word_error_rate
    from export.data.inputs import read_wav
    from export.whisper_ggml import packaged_model_dir

    audio = read_wav(ROOT / "tests" / "data" / "jfk.wav")
    rows = {}
    for backend, model in (("whisper.cpp", args.ggml), ("faster-whisper", packaged_model_dir())):
        started = time.perf_counter()
        transcriber = create_transcriber(backend, model)  # type: ignore[arg-type]
        load_s = time.perf_counter() - started
        transcriber.transcribe(audio)  # warm-up
        runs = [transcriber.transcribe(audio) for _ in range(args.repeats)]
        rtf = [r.real_time_factor for r in runs]
        rows[backend] = {
            "text": runs[-1].text,
            "wer": word_error_rate(JFK_TEXT, runs[-1].text),
            "rtf_median": round(statistics.median(rtf), 3),
            "rtf_range": [round(min(rtf), 3), round(max(rtf), 3)],
            "load_s": round(load_s, 2),
        }
        print(backend, rows[backend], flush=True)
    base = rows["whisper.cpp"]["rtf_median"]
    lines = [
        f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()} "
        f"({time.strftime('%Y-%m-%d %H:%M:%S')}); jfk.wav (11 s), VAD on, 2 threads, median of {args.repeats} runs.",
        "",
        "| back-end | word error rate | real-time factor (range) | time vs whisper.cpp | load s |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {b} | {r['wer']:.3f} | {r['rtf_median']} ({r['rtf_range'][0]}-{r['rtf_range'][1]}) | "
            f"{r['rtf_median'] / base:.2f}x | {r['load_s']} |"
            for b, r in rows.items()
        ),
        "",
    ]
    write_results(args.out, "transcribe", rows, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
