"""Compose the bundled demo clip from assets that installed packages ship.

Video: scikit-image's astronaut photograph (a real, smiling face) drifting slowly on a grey
background, with a cut-away of three and a half seconds to a picture without a face (scikit-image's coffee cup) so
the demo also shows the 'no_face' flag. Audio: speech synthesised by espeak-ng, with pauses, so the
demo shows voice activity and silence. Muxed by GStreamer into Matroska (H.264 + Vorbis).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import cv2
import numpy as np
from skimage import data

FPS = 15
SIZE = (640, 480)  # width, height
DURATION_S = 14.0
CUTAWAY_S = (7.0, 10.5)
SPEECH = [
    (1.0, "Hello. This week has been really good, and I am feeling much better."),
    (7.5, "I went for a long walk with my sister and we laughed a lot."),
]


def _frame(canvas_bg: np.ndarray, picture: np.ndarray, t: float) -> np.ndarray:
    frame = canvas_bg.copy()
    h = int(SIZE[1] * (0.80 + 0.03 * np.sin(t * 0.7)))
    w = int(picture.shape[1] * h / picture.shape[0])
    pic = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
    x = (SIZE[0] - w) // 2 + int(25 * np.sin(t * 0.9))
    y = (SIZE[1] - h) // 2 + int(8 * np.cos(t * 0.6))
    frame[y : y + h, x : x + w] = pic
    return frame


def write_frames(folder: Path, repeat: int = 1) -> None:
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    bg = np.full((SIZE[1], SIZE[0], 3), 118, dtype=np.uint8)
    for i in range(int(DURATION_S * repeat * FPS)):
        t = i / FPS
        picture = coffee if CUTAWAY_S[0] <= t % DURATION_S < CUTAWAY_S[1] else astronaut
        cv2.imwrite(str(folder / f"{i:05d}.png"), _frame(bg, picture, t))


def write_audio(folder: Path, repeat: int = 1) -> Path:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    rate = 22050
    track = np.zeros(int(DURATION_S * repeat * rate), dtype=np.int16)
    schedule = [(start + k * DURATION_S, text) for k in range(repeat) for start, text in SPEECH]
    for n, (start, text) in enumerate(schedule):
        part = folder / f"speech{n}.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(part), text], check=True)
        with wave.open(str(part)) as w:
            if w.getframerate() != rate or w.getsampwidth() != 2 or w.getnchannels() != 1:
                sys.exit(f"unexpected espeak-ng output format in {part}")
            speech = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        begin = int(start * rate)
        end = min(begin + speech.shape[0], track.shape[0])
        track[begin:end] = speech[: end - begin]
    out = folder / "audio.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(track.tobytes())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=1, help="the 14 s scene this many times (longer benchmarks)")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clinic-demo-") as tmp:
        folder = Path(tmp)
        write_frames(folder, args.repeat)
        audio = write_audio(folder, args.repeat)
        partial = args.out.with_suffix(".partial.mkv")
        pipeline = (
            f'multifilesrc location={folder}/%05d.png index=0 caps="image/png,framerate={FPS}/1" '
            "! pngdec ! videoconvert ! video/x-raw,format=I420 "
            "! x264enc speed-preset=veryfast tune=stillimage key-int-max=30 ! h264parse ! queue ! mux. "
            f"filesrc location={audio} ! wavparse ! audioconvert ! audioresample ! vorbisenc ! queue ! mux. "
            f"matroskamux name=mux ! filesink location={partial}"
        )
        subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], check=True)
        partial.replace(args.out)
    print(f"demo clip: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
