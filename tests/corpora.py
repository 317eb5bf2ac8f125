"""Tiny generated corpora in each corpus' real file layout (nothing is downloaded).

Sound: each emotion is a voice-like harmonic tone whose pitch and loudness depend on the class,
with noise and a per-speaker pitch offset, so a model can learn the classes and a split by
speaker is a real test. Faces: grey images whose pattern (bar orientation) depends on the class.
"""

from __future__ import annotations

import csv
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

PRODUCT = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def tone(label: str, speaker: int, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    k = PRODUCT.index(label)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110.0 * 2 ** (k / 4) * (1 + 0.01 * speaker)
    voice = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    envelope = 0.2 + 0.05 * (k % 3)
    return (envelope * voice / 2 + 0.01 * rng.normal(size=t.shape)).astype(np.float32)


def write_wav(path: Path, signal: np.ndarray, rate: int, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    if channels == 2:
        pcm = np.repeat(pcm[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


def ravdess(root: Path, actors: Iterable[int] = range(1, 7), seconds: float = 1.0, seed: int = 0) -> Path:
    """``Actor_NN/03-01-EE-II-SS-RR-NN.wav``, 48 kHz stereo like the original."""
    rng = np.random.default_rng(seed)
    for actor in actors:
        for e, label in enumerate(PRODUCT, start=1):
            for rep in (1, 2):
                intensity = 1 if e == 1 else rep
                name = f"03-01-{e:02d}-{intensity:02d}-{rep:02d}-{rep:02d}-{actor:02d}.wav"
                write_wav(root / f"Actor_{actor:02d}" / name, tone(label, actor, seconds, 48_000, rng), 48_000, 2)
        # A video file and a song clip, which the speech loader leaves out.
        (root / f"Actor_{actor:02d}" / f"01-01-01-01-01-01-{actor:02d}.mp4").write_bytes(b"")
        write_wav(
            root / f"Actor_{actor:02d}" / f"03-02-03-01-01-01-{actor:02d}.wav",
            tone("happy", actor, 0.3, 48_000, rng),
            48_000,
        )
    return root


CREMAD = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def cremad(root: Path, actors: Iterable[int] = range(1001, 1005), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for actor in actors:
        for code, label in CREMAD.items():
            for sentence, level in (("IEO", "HI"), ("TIE", "XX")):
                write_wav(
                    root / "AudioWAV" / f"{actor}_{sentence}_{code}_{level}.wav",
                    tone(label, actor, 1.0, 16_000, rng),
                    16_000,
                )
    return root


TESS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "sad": "sad",
}


def tess(root: Path, words: Iterable[str] = ("back", "bar"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for speaker in ("OAF", "YAF"):
        for code, label in TESS.items():
            folder = f"{speaker}_Pleasant_surprise" if code == "ps" else f"{speaker}_{code}"
            for word in words:
                write_wav(
                    root / folder / f"{speaker}_{word}_{code}.wav",
                    tone(label, 7 if speaker == "OAF" else 9, 0.8, 24_414, rng),
                    24_414,
                )
    return root


def face(label: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """A grey image whose bar pattern's angle encodes the class."""
    k = PRODUCT.index(label)
    yy, xx = np.mgrid[0:side, 0:side] / side
    angle = np.pi * k / len(PRODUCT)
    pattern = np.sin(2 * np.pi * 3 * (xx * np.cos(angle) + yy * np.sin(angle)))
    img = 128 + 90 * pattern + rng.normal(0, 12, size=(side, side))
    return np.clip(img, 0, 255).astype(np.uint8)


FER = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")


def fer2013(root: Path, per_class: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``fer2013.csv`` with emotion,pixels,Usage."""
    per_class = per_class or {"Training": 12, "PublicTest": 4, "PrivateTest": 4}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "fer2013.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for usage, count in per_class.items():
            for code, label in enumerate(FER):
                for _ in range(count):
                    writer.writerow([code, " ".join(map(str, face(label, 48, rng).ravel())), usage])
    return root


CKPLUS = {1: "angry", 2: None, 3: "disgust", 4: "fearful", 5: "happy", 6: "sad", 7: "surprised"}


def ckplus(root: Path, subjects: Iterable[int] = range(5, 11), seed: int = 0) -> Path:
    """``cohn-kanade-images/SNNN/SSS/*.png`` and ``Emotion/SNNN/SSS/*_emotion.txt`` (contempt included)."""
    rng = np.random.default_rng(seed)
    for subject in subjects:
        for seq, code in enumerate(CKPLUS, start=1):
            label = CKPLUS[code]
            frames = root / "cohn-kanade-images" / f"S{subject:03d}" / f"{seq:03d}"
            frames.mkdir(parents=True, exist_ok=True)
            for i in range(1, 5):
                shown = "neutral" if i == 1 or label is None else label
                img = face(shown, 96, rng)
                wide = np.full((96, 128), 40, dtype=np.uint8)
                wide[:, 16:112] = img
                Image.fromarray(wide).save(frames / f"S{subject:03d}_{seq:03d}_{i:08d}.png")
            emotion = root / "Emotion" / f"S{subject:03d}" / f"{seq:03d}"
            emotion.mkdir(parents=True, exist_ok=True)
            (emotion / f"S{subject:03d}_{seq:03d}_{4:08d}_emotion.txt").write_text(f"   {code:.7e}\n")
    return root
