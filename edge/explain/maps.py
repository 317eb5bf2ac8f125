"""Attribution maps, computed by the same engine that runs in the room (TensorRT or ONNX Runtime).

* **Face**: occlusion over a grid (8 x 8 by default) of the aligned face crop. Each cell in turn is
  filled with the crop's mean grey; the cell's importance is how much the probability of the face's
  top class drops without it (one batch of 65 inferences). Cells are grouped into regions tied to
  the face's landmarks in the crop (eyes and nose tip from the detector; brows above the eyes, the
  mouth from just below the nose tip down by the eye-nose distance), and each region's share of the positive
  importance is reported. The map is an 8 x 8 array of numbers: never an image of the face.
* **Voice**: importance of each half-second of the window: the drop in the speech model's top
  class probability (method ``speech_cnn``), or the change in arousal against the speaker's
  baseline (method ``acoustic``), when that half-second is silenced.
* **Words**: the text channel's leave-one-word-out importances (kept only where transcripts are).
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from clinic_signals.prosody import SpeakerBaseline, affect, voice_cues
from contract.audio import SAMPLE_RATE
from edge.channels.speech import SpeechEmotionModel
from edge.inference.face import FaceExpressionModel
from edge.results import FaceCrop

REGIONS = ("brows", "eyes", "nose", "mouth", "other")
VOICE_SEGMENT_S = 0.5


def region_of_cells(crop: FaceCrop, grid: int) -> list[str]:
    """The region of each grid cell (row-major), from the landmarks in the crop."""
    size = crop.pixels.shape[0]
    eye_y = (crop.eyes[0][1] + crop.eyes[1][1]) / 2
    nose_y = crop.nose[1]
    step = max(nose_y - eye_y, 0.12 * size)  # eye-to-nose distance; the mouth lies about as far below
    xs = sorted(e[0] for e in crop.eyes)
    left, right = xs[0] - 0.18 * size, xs[1] + 0.18 * size
    out = []
    cell = size / grid
    for r in range(grid):
        for c in range(grid):
            x, y = (c + 0.5) * cell, (r + 0.5) * cell
            inside = left <= x <= right
            if not inside:
                out.append("other")
            elif eye_y - 0.9 * step <= y < eye_y - 0.3 * step:
                out.append("brows")
            elif eye_y - 0.3 * step <= y < eye_y + 0.35 * step:
                out.append("eyes")
            elif eye_y + 0.35 * step <= y < nose_y + 0.2 * step:
                out.append("nose")
            elif nose_y + 0.2 * step <= y < nose_y + 1.5 * step:
                out.append("mouth")
            else:
                out.append("other")
    return out


def face_occlusion(
    model: FaceExpressionModel, crop: FaceCrop, label: int, grid: int = 8
) -> tuple[npt.NDArray[np.float64], dict[str, float]]:
    """(grid x grid importance for class ``label``, share of positive importance per region)."""
    pixels = crop.pixels
    size = pixels.shape[0]
    fill = np.uint8(round(float(pixels.mean())))
    edges = np.linspace(0, size, grid + 1).round().astype(int)
    variants = [pixels]
    for r in range(grid):
        for c in range(grid):
            occluded = pixels.copy()
            occluded[edges[r] : edges[r + 1], edges[c] : edges[c + 1]] = fill
            variants.append(occluded)
    probs = model.predict(variants)[:, label].astype(np.float64)
    importance = (probs[0] - probs[1:]).reshape(grid, grid)
    positive = np.maximum(importance, 0.0).ravel()
    total = positive.sum()
    regions = dict.fromkeys(REGIONS, 0.0)
    for name, weight in zip(region_of_cells(crop, grid), positive, strict=True):
        regions[name] += float(weight)
    shares = {k: round(v / total, 4) if total > 0 else 0.0 for k, v in regions.items()}
    return importance, shares


def voice_segments(
    audio: npt.NDArray[np.float32],
    *,
    speech: SpeechEmotionModel | None,
    baseline: SpeakerBaseline,
    silence_dbfs: float,
    rate: int = SAMPLE_RATE,
) -> tuple[float, ...] | None:
    """Importance of each half-second of ``audio`` for the voice channel's result."""
    step = round(VOICE_SEGMENT_S * rate)
    count = audio.shape[0] // step
    if count == 0:
        return None
    variants = []
    for i in range(count):
        silenced = audio.copy()
        silenced[i * step : (i + 1) * step] = 0.0
        variants.append(silenced)
    if speech is not None:
        full = speech.predict(audio)
        label = int(np.argmax(full))
        return tuple(round(float(full[label] - speech.predict(v)[label]), 4) for v in variants)
    cues = voice_cues(audio, silence_dbfs=silence_dbfs)
    if cues is None or baseline.count < baseline.min_windows:
        return None
    reference = affect(cues, baseline, update=False).arousal
    out = []
    for v in variants:
        c = voice_cues(v, silence_dbfs=silence_dbfs)
        out.append(round(abs(reference - affect(c, baseline, update=False).arousal) if c else abs(reference), 4))
    return tuple(out)


def timed(costs: dict[str, float], name: str, started: float) -> None:
    costs[name] = round((time.perf_counter() - started) * 1e3, 3)
