"""Face crop and alignment: rotate so the eyes are level, crop a square, resize to the model input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from edge.vision.detect import FaceDetection


def _matrix(face: FaceDetection, size: int, crop_scale: float) -> npt.NDArray[np.float64]:
    (rx, ry), (lx, ly) = face.right_eye, face.left_eye
    angle = math.degrees(math.atan2(ly - ry, lx - rx))
    cx, cy = face.center
    side = max(face.w, face.h) * crop_scale
    matrix = np.asarray(cv2.getRotationMatrix2D((cx, cy), angle, size / side), dtype=np.float64)
    matrix[0, 2] += size / 2 - cx
    matrix[1, 2] += size / 2 - cy
    return matrix


def landmarks_in_crop(face: FaceDetection, size: int, crop_scale: float) -> dict[str, tuple[float, float]]:
    """Where the eyes and the nose tip land in the aligned crop (pixels); for explanations, in memory."""
    matrix = _matrix(face, size, crop_scale)
    points = {"right_eye": face.right_eye, "left_eye": face.left_eye, "nose_tip": face.nose_tip}
    return {k: (float(matrix[0] @ (x, y, 1.0)), float(matrix[1] @ (x, y, 1.0))) for k, (x, y) in points.items()}


def align_face(rgb: npt.NDArray[np.uint8], face: FaceDetection, size: int, crop_scale: float) -> npt.NDArray[np.uint8]:
    """Return an aligned ``(size, size)`` grey crop of ``face``.

    One affine warp rotates about the box centre by the eye-line angle, scales the square of side
    ``crop_scale * max(w, h)`` to ``size`` and centres it. Pixels outside the frame are replicated.
    """
    matrix = _matrix(face, size, crop_scale)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
