"""Model inputs from corpus items, computed as the room computes them.

Sound: read as 16-bit PCM WAV, mixed to mono, resampled to 16 kHz, the centre ``window_s``
seconds kept (zero-padded when shorter), then :class:`clinic_signals.audio.FrameFeatures` or
:class:`clinic_signals.audio.LogMel`. Faces: grey, centre square, resized to the model's side,
scaled to [-1, 1] as the room's face channel does.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy.signal import resample_poly
from tqdm import tqdm

from clinic_signals.audio import FrameFeatures, LogMel, centre_window
from contract.audio import SAMPLE_RATE
from contract.classes import CLASSES
from export.data.sample import Sample
from export.errors import DataError
from export.models.registry import (
    AnySpec,
    FaceCNNSpec,
    FusionSpec,
    SpeechCNN1DSpec,
    SpeechCNN2DSpec,
    sample_shape,
)

logger = logging.getLogger(__name__)

PIXEL_SCALE = 2.0 / 255.0
PIXEL_OFFSET = -1.0


@dataclass(frozen=True)
class Arrays:
    """A split as tensors-to-be: inputs, label indices, persons, and the fusion presence mask."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    persons: npt.NDArray[np.str_]
    present: npt.NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def save(self, path: Path) -> Path:
        """Write as ``.npz`` (``x``, ``labels``, ``speakers``, ``present``), the arrays corpus format."""
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if self.present is None else {"present": self.present}
        labels = np.array([CLASSES[i] for i in self.y])
        np.savez_compressed(path, x=self.x, labels=labels, speakers=self.persons, **extra)
        return path


def read_wav(path: Path, rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """Mono float32 in [-1, 1] at ``rate`` from a 16-bit (or 8/32-bit) PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, src_rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise DataError(f"cannot read {path} as PCM WAV: {exc}") from None
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes:
        raise DataError(f"{path}: {8 * width}-bit samples are not supported (8, 16 or 32-bit PCM)")
    pcm = np.frombuffer(raw, dtype=dtypes[width]).astype(np.float32)
    if width == 1:
        pcm = (pcm - 128.0) / 128.0
    else:
        pcm /= float(2 ** (8 * width - 1))
    mono = pcm.reshape(-1, channels).mean(axis=1)
    if src_rate != rate:
        ratio = Fraction(rate, src_rate).limit_denominator(1000)
        mono = resample_poly(mono, ratio.numerator, ratio.denominator).astype(np.float32)
    out: npt.NDArray[np.float32] = mono.astype(np.float32)
    return out


def face_crop(sample: Sample, size: int) -> npt.NDArray[np.uint8]:
    """Grey ``size`` x ``size`` crop: the centre square of the image, resized (bilinear)."""
    if sample.data is not None:
        image = Image.fromarray(np.asarray(sample.data, dtype=np.uint8))
    elif sample.path is not None:
        try:
            with Image.open(sample.path) as opened:
                image = opened.convert("L")
        except OSError as exc:
            raise DataError(f"cannot read image {sample.path}: {exc}") from None
    else:
        raise DataError(f"image item of {sample.corpus}/{sample.speaker} has neither a file nor pixels")
    side = min(image.size)
    left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(square, dtype=np.uint8)


def _one(spec: AnySpec, sample: Sample) -> npt.NDArray[np.float32]:
    if isinstance(spec, FaceCNNSpec):
        if sample.kind != "image":
            raise DataError(f"{spec.architecture} needs face images; {sample.corpus} gives {sample.kind}")
        crop = face_crop(sample, spec.size).astype(np.float32)
        return (crop * PIXEL_SCALE + PIXEL_OFFSET)[None]
    if isinstance(spec, SpeechCNN1DSpec | SpeechCNN2DSpec):
        if sample.kind != "audio" or sample.path is None:
            raise DataError(f"{spec.architecture} needs sound; {sample.corpus} gives {sample.kind}")
        length = round(spec.window_s * SAMPLE_RATE)
        signal = centre_window(read_wav(sample.path), length)
        if isinstance(spec, SpeechCNN1DSpec):
            return FrameFeatures(SAMPLE_RATE, spec.n_mels, spec.n_mfcc)(signal)
        return LogMel(SAMPLE_RATE, spec.n_mels)(signal).T[None]
    if sample.kind != "array" or sample.data is None:
        raise DataError(f"{spec.architecture} trains on prepared arrays (.npz); {sample.corpus} gives {sample.kind}")
    return np.asarray(sample.data, dtype=np.float32)


def build_arrays(spec: AnySpec, samples: Sequence[Sample], *, desc: str = "features") -> Arrays:
    """Inputs for ``spec`` from ``samples``; each item's shape is checked against the model's.

    Raises:
        DataError: an item cannot be read or does not fit the model.
    """
    expected = sample_shape(spec)
    xs = []
    for sample in tqdm(samples, desc=desc, unit="item", leave=False, disable=None):
        x = _one(spec, sample)
        if x.shape != expected:
            raise DataError(
                f"{sample.corpus} item of {sample.speaker} gives input shape {x.shape}; "
                f"{spec.architecture} expects {expected}"
            )
        xs.append(x)
    present = None
    if isinstance(spec, FusionSpec):
        masks = [s.present for s in samples]
        if any(m is None or m.shape != (len(spec.modalities),) for m in masks):
            raise DataError(f"fusion items need a presence mask of {len(spec.modalities)} modalities ('present')")
        present = np.stack([m for m in masks if m is not None]).astype(np.float32)
    return Arrays(
        x=np.stack(xs).astype(np.float32) if xs else np.zeros((0, *expected), dtype=np.float32),
        y=np.array([CLASSES.index(s.label) for s in samples], dtype=np.int64),
        persons=np.array([s.person for s in samples]),
        present=present,
    )
