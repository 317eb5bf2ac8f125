"""Compose a therapy-room scene from assets that installed packages ship: a photograph of a face
drifting slowly on a grey background, with speech synthesised by espeak-ng at given times. Muxed by
GStreamer into Matroska (H.264 + Vorbis). The bundled demo (``make_demo.py``) and the disparity
clips of the tests and ``benchmarks/disparity.py`` are made with it.

Photographs: ``astronaut`` (scikit-image; Eileen Collins, smiling), ``hopper`` (Matplotlib's sample
of Grace Hopper, a calm face), ``coffee`` (scikit-image; no face).

A sentence said ``by the face`` (``Said(..., mouth=True)``, or ``--say-by-face``) moves the photograph's
mouth: the lower face is pulled down and the gap between the lips darkened in proportion to the
speech's loudness, frame by frame (lip landmarks from the MediaPipe face mesh). Other sentences leave
the face still, as a listener's: a second person speaking off camera.

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
CONTAINERS = {  # container -> (audio encoder, muxer)
    "mkv": ("vorbisenc", "matroskamux"),
    "mp4": ("avenc_aac", "mp4mux"),
    "flv": ("audio/x-raw,rate=44100 ! lamemp3enc ! mpegaudioparse", "flvmux"),
}
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
class Said:
    """A sentence at ``start_s``, in ``voice`` (the scene's by default); ``mouth``: said by the face."""

    start_s: float
    text: str
    voice: str | None = None
    mouth: bool = False


@dataclass(frozen=True)
class Shot:
    """A photograph shown from ``start_s`` until the next shot (or the end)."""

    start_s: float
    photo: str


@dataclass(frozen=True)
class Lips:
    """Where a photograph's lips are (pixels): the line between them, the inner corners, the chin."""

    line_y: float
    left_x: float
    right_x: float
    chin_y: float
    face_h: float


def find_lips(picture: npt.NDArray[np.uint8]) -> Lips:
    from edge.vision.solutions import solution  # noqa: PLC0415 - MediaPipe as the room loads it

    h, w = picture.shape[:2]
    with solution("face_mesh").FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        found = mesh.process(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)).multi_face_landmarks
    if not found:
        sys.exit("the face mesh found no face to move the mouth of")
    p = np.array([(m.x * w, m.y * h) for m in found[0].landmark])
    return Lips(
        line_y=float((p[13][1] + p[14][1]) / 2),
        left_x=float(p[78][0]),
        right_x=float(p[308][0]),
        chin_y=float(p[152][1]),
        face_h=float(np.linalg.norm(p[10] - p[152])),
    )


def open_mouth(picture: npt.NDArray[np.uint8], lips: Lips, opening: float) -> npt.NDArray[np.uint8]:
    """The photograph with its jaw dropped by ``opening`` (0-1) of an eighth of the face's height."""
    drop = opening * lips.face_h / 8
    if drop < 0.5:
        return picture
    h, w = picture.shape[:2]
    rows = np.arange(h, dtype=np.float32)
    below = lips.chin_y + 40
    shift = np.where(
        rows < lips.line_y, 0.0, np.where(rows < below, drop, drop * np.clip(1 - (rows - below) / 60, 0, 1))
    )
    map_y = np.repeat((rows - shift)[:, None], w, axis=1).astype(np.float32)
    map_x = np.repeat(np.arange(w, dtype=np.float32)[None, :], h, axis=0)
    out = cv2.remap(picture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gap = out[int(lips.line_y) : int(lips.line_y + drop), int(lips.left_x) : int(lips.right_x)]
    gap[:] = (gap * 0.25).astype(np.uint8)  # the open mouth is dark
    return out


def _frame(background: npt.NDArray[np.uint8], picture: npt.NDArray[np.uint8], t: float) -> npt.NDArray[np.uint8]:
    frame = background.copy()
    h = int(SIZE[1] * (0.80 + 0.03 * np.sin(t * 0.7)))
    w = int(picture.shape[1] * h / picture.shape[0])
    pic = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
    x = (SIZE[0] - w) // 2 + int(25 * np.sin(t * 0.9))
    y = (SIZE[1] - h) // 2 + int(8 * np.cos(t * 0.6))
    # A wide photograph may drift past the frame's edge: paste the part inside it.
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, SIZE[0]), min(y + h, SIZE[1])
    frame[y0:y1, x0:x1] = pic[y0 - y : y1 - y, x0 - x : x1 - x]
    return frame


def write_frames(
    folder: Path, shots: Sequence[Shot], duration_s: float, opening: npt.NDArray[np.float64] | None = None
) -> None:
    """The frames; ``opening`` (0-1 per frame) moves the mouth of the photographs with a face."""
    pictures = {s.photo: PHOTOS[s.photo]() for s in shots}
    lips = {name: find_lips(p) for name, p in pictures.items() if name != "coffee"} if opening is not None else {}
    background = np.full((SIZE[1], SIZE[0], 3), 118, dtype=np.uint8)
    for i in range(int(duration_s * FPS)):
        t = i / FPS
        shot = [s for s in shots if s.start_s <= t][-1] if any(s.start_s <= t for s in shots) else shots[0]
        picture = pictures[shot.photo]
        if opening is not None and shot.photo in lips:
            picture = open_mouth(picture, lips[shot.photo], float(opening[i]))
        cv2.imwrite(str(folder / f"{i:05d}.png"), _frame(background, picture, t))


def write_audio(
    folder: Path,
    speech: Sequence[Said],
    duration_s: float,
    voice: str,
    background: npt.NDArray[np.float32] | None = None,
) -> tuple[Path, npt.NDArray[np.float64] | None]:
    """The sound track (``background``, float samples at 16 kHz, mixed under the speech), and the
    mouth's opening per video frame (None when the face says nothing)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    track = np.zeros(int(duration_s * RATE), dtype=np.int16)
    by_face = np.zeros(track.shape[0], dtype=np.float64)
    for n, said in enumerate(speech):
        part = folder / f"speech{n}.wav"
        subprocess.run([espeak, "-v", said.voice or voice, "-s", "150", "-w", str(part), said.text], check=True)
        with wave.open(str(part)) as w:
            if w.getframerate() != RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
                sys.exit(f"unexpected espeak-ng output format in {part}")
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        begin = int(said.start_s * RATE)
        end = min(begin + samples.shape[0], track.shape[0])
        track[begin:end] = samples[: end - begin]
        if said.mouth:
            by_face[begin:end] = samples[: end - begin] / 32768.0
    if background is not None:
        under = np.zeros(track.shape[0], dtype=np.float64)
        n = min(under.shape[0], background.shape[0])
        under[:n] = background[:n]
        track = np.clip(track / 32768.0 + under, -1.0, 1.0)
        track = (track * 32767.0).astype(np.int16)
    opening = None
    if by_face.any():
        per_frame = RATE // FPS
        frames = int(duration_s * FPS)
        rms = np.sqrt(np.mean(np.square(by_face[: frames * per_frame]).reshape(frames, per_frame), axis=1))
        opening = np.clip(rms / max(float(np.quantile(rms[rms > 0], 0.9)), 1e-6), 0.0, 1.0)
    out = folder / "audio.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(track.tobytes())
    return out, opening


def compose(
    out: Path,
    shots: Sequence[Shot],
    speech: Sequence[Said | tuple[float, str]],
    duration_s: float,
    *,
    voice: str = "en-us",
    container: str = "mkv",
    background: npt.NDArray[np.float32] | None = None,
) -> Path:
    """Write the scene to ``out`` (via a partial file, so a failed run leaves nothing behind), in
    ``container``: ``mkv`` (H.264 + Vorbis), ``mp4`` (H.264 + AAC, as RAVDESS ships) or ``flv``
    (H.264 + MP3, as CREMA-D's VideoFlash)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    said = [s if isinstance(s, Said) else Said(*s) for s in speech]
    with tempfile.TemporaryDirectory(prefix="clinic-scene-") as tmp:
        folder = Path(tmp)
        audio, opening = write_audio(folder, said, duration_s, voice, background)
        write_frames(folder, shots, duration_s, opening)
        partial = out.with_suffix(f".partial.{container}")
        encoder, muxer = CONTAINERS[container]
        pipeline = (
            f'multifilesrc location={folder}/%05d.png index=0 caps="image/png,framerate={FPS}/1" '
            "! pngdec ! videoconvert ! video/x-raw,format=I420 "
            "! x264enc speed-preset=veryfast tune=stillimage key-int-max=30 ! h264parse ! queue ! mux. "
            f"filesrc location={audio} ! wavparse ! audioconvert ! audioresample ! {encoder} ! queue ! mux. "
            f"{muxer} name=mux ! filesink location={partial}"
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
    parser.add_argument("--say", type=_said, action="append", default=[], help="START=TEXT (seconds), off camera")
    parser.add_argument(
        "--say-by-face", type=_said, action="append", default=[], help="START=TEXT said by the face (its mouth moves)"
    )
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice, e.g. en-us+f3")
    args = parser.parse_args()
    speech = [Said(t, text) for t, text in args.say] + [Said(t, text, mouth=True) for t, text in args.say_by_face]
    compose(args.out, [Shot(0.0, args.photo)], sorted(speech, key=lambda s: s.start_s), args.duration, voice=args.voice)
    print(f"scene: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
