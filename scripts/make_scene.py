"""Compose a therapy-room scene from assets that installed packages ship: a photograph of a face
drifting slowly on a grey background, with speech synthesised by espeak-ng at given times. Muxed by
GStreamer into Matroska (H.264 + Vorbis). The bundled demo (``make_demo.py``) and the disparity
clips of the tests and ``benchmarks/disparity.py`` are made with it.

Photographs: ``astronaut`` (scikit-image; Eileen Collins, smiling), ``hopper`` (Matplotlib's sample
of Grace Hopper, a calm face), ``coffee`` (scikit-image; no face).

Usage: python scripts/make_scene.py --out scene.mkv --photo astronaut --duration 14 \\
           --say "1.0=I feel so sad today." [--say ...] [--voice en-us+f3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

FPS = 15
SIZE = (640, 480)  # width, height
RATE = 22050  # espeak-ng's sample rate


def _astronaut() -> npt.NDArray[np.uint8]:
    from skimage import data  # noqa: PLC0415

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _coffee() -> npt.NDArray[np.uint8]:
    from skimage import data  # noqa: PLC0415

    return cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)


def _hopper() -> npt.NDArray[np.uint8]:
    from matplotlib import cbook  # noqa: PLC0415

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        encoded = np.frombuffer(f.read(), dtype=np.uint8)
    picture = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if picture is None:
        sys.exit("Matplotlib's grace_hopper.jpg could not be decoded")
    return picture


PHOTOS: dict[str, Callable[[], npt.NDArray[np.uint8]]] = {
    "astronaut": _astronaut,
    "hopper": _hopper,
    "coffee": _coffee,
}


@dataclass(frozen=True)
class Shot:
    """A photograph shown from ``start_s`` until the next shot (or the end)."""

    start_s: float
    photo: str


def _frame(background: npt.NDArray[np.uint8], picture: npt.NDArray[np.uint8], t: float) -> npt.NDArray[np.uint8]:
    frame = background.copy()
    h = int(SIZE[1] * (0.80 + 0.03 * np.sin(t * 0.7)))
    w = int(picture.shape[1] * h / picture.shape[0])
    pic = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
    x = (SIZE[0] - w) // 2 + int(25 * np.sin(t * 0.9))
    y = (SIZE[1] - h) // 2 + int(8 * np.cos(t * 0.6))
    frame[y : y + h, x : x + w] = pic
    return frame


def write_frames(folder: Path, shots: Sequence[Shot], duration_s: float) -> None:
    pictures = {s.photo: PHOTOS[s.photo]() for s in shots}
    background = np.full((SIZE[1], SIZE[0], 3), 118, dtype=np.uint8)
    for i in range(int(duration_s * FPS)):
        t = i / FPS
        shot = [s for s in shots if s.start_s <= t][-1] if any(s.start_s <= t for s in shots) else shots[0]
        cv2.imwrite(str(folder / f"{i:05d}.png"), _frame(background, pictures[shot.photo], t))


def write_audio(folder: Path, speech: Sequence[tuple[float, str]], duration_s: float, voice: str) -> Path:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    track = np.zeros(int(duration_s * RATE), dtype=np.int16)
    for n, (start, text) in enumerate(speech):
        part = folder / f"speech{n}.wav"
        subprocess.run([espeak, "-v", voice, "-s", "150", "-w", str(part), text], check=True)
        with wave.open(str(part)) as w:
            if w.getframerate() != RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
                sys.exit(f"unexpected espeak-ng output format in {part}")
            said = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        begin = int(start * RATE)
        end = min(begin + said.shape[0], track.shape[0])
        track[begin:end] = said[: end - begin]
    out = folder / "audio.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(track.tobytes())
    return out


def compose(
    out: Path,
    shots: Sequence[Shot],
    speech: Sequence[tuple[float, str]],
    duration_s: float,
    *,
    voice: str = "en-us",
) -> Path:
    """Write the scene to ``out`` (via a partial file, so a failed run leaves nothing behind)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clinic-scene-") as tmp:
        folder = Path(tmp)
        write_frames(folder, shots, duration_s)
        audio = write_audio(folder, speech, duration_s, voice)
        partial = out.with_suffix(".partial.mkv")
        pipeline = (
            f'multifilesrc location={folder}/%05d.png index=0 caps="image/png,framerate={FPS}/1" '
            "! pngdec ! videoconvert ! video/x-raw,format=I420 "
            "! x264enc speed-preset=veryfast tune=stillimage key-int-max=30 ! h264parse ! queue ! mux. "
            f"filesrc location={audio} ! wavparse ! audioconvert ! audioresample ! vorbisenc ! queue ! mux. "
            f"matroskamux name=mux ! filesink location={partial}"
        )
        subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], check=True)
        partial.replace(out)
    return out


def _said(value: str) -> tuple[float, str]:
    start, _, text = value.partition("=")
    return float(start), text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--photo", choices=sorted(PHOTOS), default="astronaut")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--say", type=_said, action="append", default=[], help="START=TEXT (seconds)")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice, e.g. en-us+f3")
    args = parser.parse_args()
    compose(args.out, [Shot(0.0, args.photo)], args.say, args.duration, voice=args.voice)
    print(f"scene: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
