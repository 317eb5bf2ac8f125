"""Transcription on this machine: word error rate and real-time factor of whisper.cpp (the converted
ggml file) and faster-whisper (the packaged CTranslate2 folder) on the same recording (jfk.wav,
public domain, 11 s), repeated; voice activity detection on, 2 threads each.

Then the room's live path: the words channel (streaming transcription with LocalAgreement, text
emotion) fed the recording window by window in real time (1 s hops of 2.5 s windows, 1 s of quiet
before, 3 s after), as a live room does: its word error rate, the delay from the end of each word
to the moment the windows could read it (wall clock, transcription included), and the
model's time per second of audio.

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
from typing import Any

from results_io import write_results

ROOT = Path(__file__).resolve().parents[1]
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def _live(transcriber: Any, speech: Any, word_error_rate: Any) -> dict[str, Any]:
    """The words channel fed the recording in real time; returns its text, delays and cost."""
    import numpy as np

    from edge.audio.features import LogMel
    from edge.audio.vad import voice_activity
    from edge.channels.words import WordsAnalyzer
    from edge.config.models import AudioConfig, InferenceConfig, WordsChannelConfig
    from edge.text.emotion import load_text_model

    rate, hop, length = 16_000, 16_000, 40_000
    audio = np.concatenate([np.zeros(rate, np.float32), speech, np.zeros(3 * rate, np.float32)])
    config, words = AudioConfig(), WordsChannelConfig()
    text = load_text_model(ROOT / "build" / "models" / "pack", InferenceConfig().backends)
    analyzer = WordsAnalyzer(
        transcriber,
        text,
        min_voiced_ratio=config.min_voiced_ratio,
        max_utterance_s=words.max_utterance_s,
        step_s=words.step_s,
        pause_s=words.pause_s,
        shed_after_s=words.shed_after_s,
        synchronous=False,
    )
    logmel = LogMel(n_mels=config.n_mels)
    seen: dict[float, float] = {}  # word start -> wall time (s after the audio began) windows could read it
    begun = time.perf_counter()

    def look() -> None:
        for u in analyzer.recent(spoken=True):
            for a, _ in u.word_times:
                seen.setdefault(a, time.perf_counter() - begun)

    k = 0
    while k * hop + length <= audio.shape[0]:
        end_s = (k * hop + length) / rate
        while time.perf_counter() - begun < end_s:  # the window's audio exists only once it was said
            look()
            time.sleep(0.01)
        window = audio[k * hop : k * hop + length]
        activity = voice_activity(window, logmel, config)
        analyzer.feed(window, k * hop / rate, activity.voiced, logmel.hop)
        k += 1
    analyzer.finish()
    look()
    utterances = analyzer.recent()
    analyzer.close()
    delays = sorted(seen[a] - b for u in utterances for a, b in u.word_times if a in seen)
    said = " ".join(u.text for u in utterances)
    return {
        "text": said,
        "wer": word_error_rate(JFK_TEXT, said),
        "delays_s": [round(d, 3) for d in delays],
        "model_s_per_audio_s": round(sum(u.transcribe_ms for u in utterances) / 1e3 / (audio.shape[0] / rate), 3),
        "skipped": analyzer.skipped,
    }


def _live_row(backend: str, row: dict[str, Any]) -> str:
    runs = row["live"]
    delays = sorted(d for r in runs for d in r["delays_s"])
    if not delays:
        return f"| {backend} | no words | {row['wer']:.3f} | - | - |"

    def q(p: float) -> float:
        return delays[min(len(delays) - 1, round(p * (len(delays) - 1)))]

    wers = ", ".join(f"{r['wer']:.3f}" for r in runs)
    cost = statistics.median(r["model_s_per_audio_s"] for r in runs)
    return f"| {backend} | {wers} | {row['wer']:.3f} | {q(0.5):.1f} / {q(0.95):.1f} / {delays[-1]:.1f} | {cost:.2f} s |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live-runs", type=int, default=2)
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
        rows[backend]["live"] = [_live(transcriber, audio, word_error_rate) for _ in range(args.live_runs)]
        print(backend, "live", rows[backend]["live"], flush=True)
        transcriber.close()
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
        f"The room's live path (words channel, defaults: a transcription every 2 s of speech, 2 s pauses "
        f"end an utterance), jfk.wav in real time, {args.live_runs} runs: delay from a word's end to its "
        "being readable by the windows (p50 / p95 / max over the words of all runs).",
        "",
        "| back-end | live word error rate | whole-file word error rate | delay p50 / p95 / max s | "
        "model time per audio second |",
        "| --- | --- | --- | --- | --- |",
        *(_live_row(b, r) for b, r in rows.items()),
        "",
    ]
    write_results(args.out, "transcribe", rows, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
