"""Transcription on this machine: word error rate and real-time factor of whisper.cpp (the converted
ggml file) and faster-whisper (the packaged CTranslate2 folder, with the room's fitted audio context
and with Whisper's full 30 s) on the same recording (jfk.wav, public domain, 11 s), repeated; voice
activity detection on, each engine's default threads (faster-whisper 1, whisper.cpp 2); faster-whisper
with 2 threads beside its default, in the same sitting.

Then the room's live path: the words channel (streaming transcription with LocalAgreement, text
emotion) fed recorded speech window by window in real time (1 s hops of 2.5 s windows), as a live
room does: jfk.wav and, where Debian's pocketsphinx-testdata is installed (scripts/setup.sh installs
it), its five LibriVox sentences (a man reading, public domain, 25 s), 3 s of quiet between them.
Per back-end: the word error rate, the delay from the end of each word to the moment the windows
could read it (wall clock, transcription included), and the model's CPU time per second of audio.

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
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
# (step_s, quick_start_s) run beside the default: every 1 s for a sentence's first 5 s; every 1 s; every 2 s
STEP_VARIANTS = ((2.0, 5.0), (1.0, 0.0), (2.0, 0.0))


def _recordings(read_wav: Any) -> list[tuple[Any, str]]:
    """(audio, reference text) of the live path's recordings: jfk.wav and the LibriVox sentences."""
    out = [(read_wav(ROOT / "tests" / "data" / "jfk.wav"), JFK_TEXT)]
    transcription = LIBRIVOX / "transcription"
    if transcription.is_file():
        for line in transcription.read_text(encoding="utf-8").splitlines():
            text, _, name = line.rpartition("(")
            out.append((read_wav(LIBRIVOX / f"{name.strip(' )')}.wav"), text.replace("<s>", "").replace("</s>", "")))
    return out


def _live(
    transcriber: Any,
    recordings: list[tuple[Any, str]],
    word_error_rate: Any,
    steps: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """``steps``: (step_s, quick_start_s) instead of the room's defaults."""
    """The words channel fed the recordings in real time; returns its text, delays and cost."""
    import numpy as np

    from edge.audio.features import LogMel
    from edge.audio.vad import voice_activity
    from edge.channels.words import WordsAnalyzer
    from edge.config.models import AudioConfig, InferenceConfig, WordsChannelConfig
    from edge.text.emotion import load_text_model

    rate, hop, length = 16_000, 16_000, 40_000
    parts = [np.zeros(rate, np.float32)]
    for speech, _ in recordings:
        parts += [speech, np.zeros(3 * rate, np.float32)]
    audio = np.concatenate(parts)
    reference = " ".join(text for _, text in recordings)
    cpu = time.process_time()
    passes_before = dict(getattr(transcriber, "passes", {}))
    config, words = AudioConfig(), WordsChannelConfig()
    text = load_text_model(ROOT / "build" / "models" / "pack", InferenceConfig().backends)
    analyzer = WordsAnalyzer(
        transcriber,
        text,
        min_voiced_ratio=config.min_voiced_ratio,
        max_utterance_s=words.max_utterance_s,
        step_s=steps[0] if steps else words.step_s,
        quick_start_s=steps[1] if steps else words.quick_start_s,
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
    cpu = time.process_time() - cpu
    delays = sorted(seen[a] - b for u in utterances for a, b in u.word_times if a in seen)
    said = " ".join(u.text for u in utterances)
    return {
        "text": said,
        "wer": word_error_rate(reference, said),
        "delays_s": [round(d, 3) for d in delays],
        "model_s_per_audio_s": round(sum(u.transcribe_ms for u in utterances) / 1e3 / (audio.shape[0] / rate), 3),
        "cpu_s_per_audio_s": round(cpu / (audio.shape[0] / rate), 3),
        "passes": {k: v - passes_before.get(k, 0) for k, v in getattr(transcriber, "passes", {}).items()},
        "skipped": analyzer.skipped,
        "quick_declined": analyzer.stream.quick_declined,
    }


def _live_row(backend: str, row: dict[str, Any]) -> str:
    runs = row["live"]
    delays = sorted(d for r in runs for d in r["delays_s"])
    if not delays:
        return f"| {backend} | no words | {row['wer']:.3f} | - | - | - | - |"

    def q(p: float) -> float:
        return delays[min(len(delays) - 1, round(p * (len(delays) - 1)))]

    wers = ", ".join(f"{r['wer']:.3f}" for r in runs)
    cost = statistics.median(r["model_s_per_audio_s"] for r in runs)
    cpu = statistics.median(r["cpu_s_per_audio_s"] for r in runs)
    passes = [r.get("passes") or {} for r in runs]
    counted = (
        " / ".join(str(sum(p.get(k, 0) for p in passes)) for k in ("fitted", "full", "withheld"))
        if any(passes)
        else "-"
    )
    return (
        f"| {backend} | {wers} | {row['wer']:.3f} | {q(0.5):.1f} / {q(0.95):.1f} / {delays[-1]:.1f} | "
        f"{cost:.2f} s | {cpu:.2f} s | {counted} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live-runs", type=int, default=2)
    parser.add_argument("--ggml", type=Path, default=ROOT / "build" / "models" / "whisper-tiny.en.ggml.bin")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from edge.config.models import ModelsConfig, WordsChannelConfig

    words = WordsChannelConfig()
    from edge.inference.pack import trust_pack
    from edge.transcribe import create_transcriber
    from edge.transcribe.wer import word_error_rate
    from export.data.inputs import read_wav
    from export.whisper_ggml import packaged_model_dir

    pack = ROOT / "build" / "models" / "pack"  # the text model the live path runs, as a room checks it
    trust_pack(ModelsConfig(pack=pack, trusted_keys=[ROOT / "build" / "keys" / "pack-signing.key.pub"]))
    recordings = _recordings(read_wav)
    audio = recordings[0][0]
    rows = {}
    setups = (  # (label, back-end, model, audio context, threads: None for the engine's default)
        ("whisper.cpp", "whisper.cpp", args.ggml, "full", None),
        ("faster-whisper (fitted context, the default)", "faster-whisper", packaged_model_dir(), "fitted", None),
        ("faster-whisper (fitted context, 2 threads)", "faster-whisper", packaged_model_dir(), "fitted", 2),
        ("faster-whisper (30 s context)", "faster-whisper", packaged_model_dir(), "full", None),
    )
    for label, backend, model, context, threads in setups:
        started = time.perf_counter()
        transcriber = create_transcriber(backend, model, context=context, threads=threads)  # type: ignore[arg-type]
        load_s = time.perf_counter() - started
        transcriber.transcribe(audio)  # warm-up
        runs = [transcriber.transcribe(audio) for _ in range(args.repeats)]
        rtf = [r.real_time_factor for r in runs]
        rows[label] = {
            "text": runs[-1].text,
            "wer": word_error_rate(JFK_TEXT, runs[-1].text),
            "rtf_median": round(statistics.median(rtf), 3),
            "rtf_range": [round(min(rtf), 3), round(max(rtf), 3)],
            "load_s": round(load_s, 2),
        }
        print(label, rows[label], flush=True)
        rows[label]["live"] = [_live(transcriber, recordings, word_error_rate) for _ in range(args.live_runs)]
        print(label, "live", rows[label]["live"], flush=True)
        if context == "fitted" and threads is None:  # the default: its steps against every 2 s or 1 s
            for steps in (v for v in STEP_VARIANTS if v != (words.step_s, words.quick_start_s)):
                live = [_live(transcriber, recordings, word_error_rate, steps) for _ in range(args.live_runs)]
                name = f"{label}, step_s = {steps[0]:g}, quick_start_s = {steps[1]:g}"
                rows[name] = {**rows[label], "live": live, "step_s": steps[0]}
                print(name, "live", live, flush=True)
        transcriber.close()
    base = rows["whisper.cpp"]["rtf_median"]
    lines = [
        f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()} "
        f"({time.strftime('%Y-%m-%d %H:%M:%S')}); jfk.wav (11 s), VAD on, "
        f"each engine's default threads unless named, median of {args.repeats} runs.",
        "",
        "| back-end | word error rate | real-time factor (range) | time vs whisper.cpp | load s |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {b} | {r['wer']:.3f} | {r['rtf_median']} ({r['rtf_range'][0]}-{r['rtf_range'][1]}) | "
            f"{r['rtf_median'] / base:.2f}x | {r['load_s']} |"
            for b, r in rows.items()
            if "step_s" not in r
        ),
        "",
        f"The room's live path (words channel, defaults: a transcription every {words.step_s:g} s of speech"
        + (f", every 1 s while the sentence is shorter than {words.quick_start_s:g} s" if words.quick_start_s else "")
        + f", {words.pause_s:g} s pauses "
        f"end an utterance), {len(recordings)} recordings ({sum(a.shape[0] for a, _ in recordings) / 16_000:.0f} s "
        f"of speech: jfk.wav{' and LibriVox' if len(recordings) > 1 else ''}) in real time, {args.live_runs} runs: "
        "delay from a word's end to its being readable by the windows (p50 / p95 / max over the words of all "
        "runs), the transcriber's wall time and the whole live path's CPU time per second of audio; "
        "faster-whisper's passes over all runs: with the fitted audio context, again with 30 s (a doubtful "
        "final answer), withheld (a doubtful provisional answer).",
        "",
        "| back-end | live word error rate | whole-file word error rate (jfk) | delay p50 / p95 / max s | "
        "model time per audio second | CPU per audio second | passes: fitted / 30 s / withheld |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(_live_row(b, r) for b, r in rows.items()),
        "",
    ]
    write_results(args.out, "transcribe", rows, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
