"""Face detection with MediaPipe's BlazeFace models, which the pinned mediapipe wheel ships.

Each detection gives a box and six keypoints (both eyes, nose tip, mouth centre, both ear
tragions) in pixels; the eyes drive alignment. Nothing is downloaded: the models are read from
the installed package, and a mediapipe without them is reported as such.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from clinic_common.native_logs import native_logs_to
from edge.errors import ModelError
from edge.vision.solutions import solution

logger = logging.getLogger(__name__)

_MODEL_FILES = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range_sparse.tflite",
}


@dataclass(frozen=True, slots=True)
class FaceDetection:
    """A face in pixel coordinates of the analysed frame."""

    x: float
    y: float
    w: float
    h: float
    score: float
    right_eye: tuple[float, float]  # the person's right eye (image left for a frontal face)
    left_eye: tuple[float, float]
    nose_tip: tuple[float, float] = (0.0, 0.0)

    @property
    def yaw_ratio(self) -> float:
        """Horizontal offset of the nose tip from the eyes' midpoint, in eye distances: about 0 for
        a frontal face, growing as the head turns (a coarse head-pose cue from six landmarks)."""
        mid = (self.right_eye[0] + self.left_eye[0]) / 2
        distance = abs(self.left_eye[0] - self.right_eye[0]) or 1.0
        return (self.nose_tip[0] - mid) / distance

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def area(self) -> float:
        return self.w * self.h


def _model_dir() -> Path:
    spec = find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("mediapipe is not installed; install the 'edge' extra (scripts/setup.sh)")
    return Path(next(iter(spec.submodule_search_locations))) / "modules" / "face_detection"


class FaceDetector:
    """MediaPipe face detection on RGB frames. Not thread-safe: one per analysis thread."""

    def __init__(self, detector_range: Literal["short", "full"], min_confidence: float) -> None:
        model = _model_dir() / _MODEL_FILES[detector_range]
        if not model.is_file():
            raise ModelError(
                f"MediaPipe face model {model} is missing; install mediapipe==0.10.18, whose wheel ships it"
            )
        face_detection = solution("face_detection")  # heavy import, only when a detector is built

        with native_logs_to(logger):  # TensorFlow Lite's start-up lines, at DEBUG
            self._mp = face_detection.FaceDetection(
                model_selection=1 if detector_range == "full" else 0,
                min_detection_confidence=min_confidence,
            )
            self._mp.process(np.zeros((64, 64, 3), dtype=np.uint8))  # the graph starts (and logs) here
        logger.info("face detector: MediaPipe %s-range (%s)", detector_range, model.name)

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[FaceDetection]:
        h, w = rgb.shape[:2]
        result: Any = self._mp.process(rgb)
        faces: list[FaceDetection] = []
        for det in result.detections or ():
            box = det.location_data.relative_bounding_box
            kp = det.location_data.relative_keypoints
            faces.append(
                FaceDetection(
                    x=box.xmin * w,
                    y=box.ymin * h,
                    w=box.width * w,
                    h=box.height * h,
                    score=float(det.score[0]),
                    right_eye=(kp[0].x * w, kp[0].y * h),
                    left_eye=(kp[1].x * w, kp[1].y * h),
                    nose_tip=(kp[2].x * w, kp[2].y * h),
                )
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def close(self) -> None:
        self._mp.close()
