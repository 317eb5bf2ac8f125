"""Generated labelled corpora in RAVDESS's, CREMA-D's and a manifest's real layouts, for
``clinic-edge evaluate`` and ``clinic-export fit``: scenes of package photographs whose expression is
known (scikit-image's astronaut smiles: happy; Matplotlib's Grace Hopper: neutral; scikit-image's
coffee: no face) with espeak-ng speech (scripts/make_scene.py). Nothing is downloaded."""

from __future__ import annotations

import csv
import subprocess
import wave
from pathlib import Path
from types import ModuleType

PHOTO = {"happy": "astronaut", "neutral": "hopper"}
RAVDESS_CODE = {"neutral": "01", "happy": "03"}
CREMAD_CODE = {"neutral": "NEU", "happy": "HAP"}
SECONDS = 3.0


def _speech(path: Path, text: str, voice: str = "en-us", seconds: float = SECONDS) -> Path:
    """espeak-ng saying ``text``, padded with silence to ``seconds`` (a room's window is 2.5 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path), "rb") as wav:
        params, frames = wav.getparams(), wav.readframes(wav.getnframes())
    missing = max(0, int(seconds * params.framerate) - params.nframes)
    with wave.open(str(path), "wb") as wav:
        wav.setparams(params)
        wav.writeframes(frames + b"\x00" * missing * params.sampwidth * params.nchannels)
    return path


def ravdess(scene: ModuleType, root: Path, actors: tuple[int, ...] = (1, 2)) -> Path:
    """``Actor_NN/01-01-EE-01-SS-01-NN.mp4`` (audio-visual speech) for happy and neutral, one audio-only
    ``03-01-...wav`` per actor, and a song and a video-only file (which evaluate leaves out)."""
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        for label, code in RAVDESS_CODE.items():
            statement = "01" if actor % 2 else "02"
            text = "Kids are talking by the door." if statement == "01" else "Dogs are sitting by the door."
            name = f"01-01-{code}-01-{statement}-01-{actor:02d}.mp4"
            scene.compose(folder / name, [scene.Shot(0.0, PHOTO[label])], [(0.3, text)], SECONDS, container="mp4")
        _speech(folder / f"03-01-03-01-01-01-{actor:02d}.wav", "Kids are talking by the door.")
        _speech(folder / f"03-02-03-01-01-01-{actor:02d}.wav", "Kids are singing by the door.")  # song: left out
        (folder / f"02-01-03-01-01-01-{actor:02d}.mp4").write_bytes(b"video only: left out")
    return root


def cremad(scene: ModuleType, root: Path, actors: tuple[int, ...] = (1001, 1002)) -> Path:
    """``VideoFlash/AAAA_DFA_EEE_XX.flv`` for happy and neutral with their ``AudioWAV`` twins, and one
    recording with only its sound."""
    for actor in actors:
        for label, code in CREMAD_CODE.items():
            stem = f"{actor}_DFA_{code}_XX"
            text = "Don't forget a jacket."
            scene.compose(
                root / "VideoFlash" / f"{stem}.flv",
                [scene.Shot(0.0, PHOTO[label])],
                [(0.3, text)],
                SECONDS,
                container="flv",
            )
            _speech(root / "AudioWAV" / f"{stem}.wav", text)
    _speech(root / "AudioWAV" / f"{actors[0]}_IEO_NEU_LO.wav", "It's eleven o'clock.")
    return root


def manifest(scene: ModuleType, root: Path) -> Path:
    """A clinic's own recordings: what is said varies (the words carry a signal here)."""
    rows = [
        (
            "clips/a.mkv",
            "happy",
            "client-a",
            "0.7",
            "0.4",
            "no",
            "astronaut",
            "This is wonderful, I am so happy today.",
        ),
        ("clips/b.mkv", "sad", "client-b", "-0.7", "-0.3", "no", "hopper", "I feel so sad and alone."),
        ("clips/c.mkv", "neutral", "client-c", "0.0", "-0.1", "", "coffee", "The bus comes at nine."),
    ]
    for path, *_, photo, text in rows:
        scene.compose(root / path, [scene.Shot(0.0, photo)], [(0.3, text)], SECONDS)
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "speaker", "valence", "arousal", "disparate"])  # face, voice, words agree
        writer.writerows(r[:6] for r in rows)
    return root / "manifest.csv"
