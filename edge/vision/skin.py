"""Skin regions for the pulse channel: forehead and cheeks from the MediaPipe face mesh.

Each region is the convex hull of a set of mesh landmarks (the 468-point topology); the sampler
returns the mean RGB of the pixels inside, never the pixels. Eyes, brows, nostrils, lips and beard
areas are outside every region, so blinks and speech move the mean colour little. The mesh is the
costly part: :meth:`SkinSampler.locate` finds the regions, :func:`read_skin` reads a frame's colour
inside them, so a room can run the mesh on every Nth frame and read the frames between through the
last regions, moved with the detected face (``channels.pulse.mesh_every``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from clinic_common.native_logs import native_logs_to
from edge.vision.detect import _model_dir
from edge.vision.solutions import solution

logger = logging.getLogger(__name__)

REGIONS: dict[str, tuple[int, ...]] = {
    "forehead": (109, 10, 338, 297, 299, 337, 151, 108, 69, 67),
    "left_cheek": (347, 348, 329, 355, 429, 279, 358, 423, 425, 280, 352, 346),  # the person's left
    "right_cheek": (118, 119, 100, 126, 209, 49, 129, 203, 205, 50, 123, 117),
}
# Mesh landmarks of the mouth cue: inner upper and lower lip, top of the forehead and the chin.
UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN = 13, 14, 10, 152


@dataclass(frozen=True)
class SkinSample:
    rgb: tuple[float, float, float]  # mean of the skin pixels, 0-255
    pixels: int
    center: tuple[float, float]  # centre of the skin regions in pixels, for motion checks


@dataclass(frozen=True)
class SkinRegions:
    """Outlines (convex polygons, pixel coordinates) of the forehead and cheeks found by the mesh.

    Kept so that the frames between two mesh runs can read the same regions, moved with the face.
    """

    polygons: tuple[npt.NDArray[np.float32], ...]
    # How far the lips are apart, as a share of the face's height (forehead to chin), when the mesh
    # ran on this frame: the speaker attribution's mouth cue (edge/speakers/mouth.py).
    mouth: float | None = None

    def moved(self, origin: tuple[float, float], target: tuple[float, float]) -> SkinRegions:
        """The regions translated by ``target - origin`` (the mouth opening is the mesh frame's only)."""
        shift = np.asarray(target, dtype=np.float32) - np.asarray(origin, dtype=np.float32)
        return SkinRegions(tuple((p + shift).astype(np.float32) for p in self.polygons))


def read_skin(rgb: npt.NDArray[np.uint8], regions: SkinRegions) -> SkinSample | None:
    """Mean colour of the pixels inside ``regions``; None when too little of them is in the image."""
    import cv2  # noqa: PLC0415 - shipped with mediapipe

    h, w = rgb.shape[:2]
    points = np.concatenate(regions.polygons)
    x0, y0 = np.clip(points.min(axis=0).astype(int), 0, None)
    x1, y1 = np.minimum(points.max(axis=0).astype(int) + 1, (w, h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    for polygon in regions.polygons:
        cv2.fillConvexPoly(mask, (polygon - (x0, y0)).astype(np.int32), (1,))
    inside = mask.astype(bool)
    count = int(inside.sum())
    if count < 16:
        return None
    mean = rgb[y0:y1, x0:x1][inside].mean(axis=0)
    center = points.mean(axis=0)
    return SkinSample((float(mean[0]), float(mean[1]), float(mean[2])), count, (float(center[0]), float(center[1])))


class SkinSampler:
    """MediaPipe face mesh (tracking mode) on RGB frames. Not thread-safe: one per analysis thread."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        model = _model_dir().parent / "face_landmark" / "face_landmark.tflite"
        if not model.is_file():
            from edge.errors import ModelError  # noqa: PLC0415

            raise ModelError(f"MediaPipe face mesh model {model} is missing; install mediapipe==0.10.18")
        face_mesh = solution("face_mesh")

        with native_logs_to(logger):  # TensorFlow Lite's start-up lines, at DEBUG
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
            self._mesh.process(np.zeros((64, 64, 3), dtype=np.uint8))  # the graph starts (and logs) here
        self._first_face_seen = False

    def landmarks(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32] | None:
        """The largest face's 468 mesh points in pixels ``(468, 2)``, or None when no face is found."""
        h, w = rgb.shape[:2]
        if self._first_face_seen:
            result: Any = self._mesh.process(rgb)
        else:  # the graph's landmark stage starts, and logs, at the first face
            with native_logs_to(logger):
                result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        self._first_face_seen = True
        marks = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h) for p in marks], dtype=np.float32)

    def locate(self, rgb: npt.NDArray[np.uint8]) -> SkinRegions | None:
        """The skin regions of the largest face (the mesh's cost), or None when no face is found."""
        import cv2  # noqa: PLC0415 - shipped with mediapipe

        points = self.landmarks(rgb)
        if points is None:
            return None
        hulls = (cv2.convexHull(points[list(indices)]).reshape(-1, 2) for indices in REGIONS.values())
        height = float(np.linalg.norm(points[FOREHEAD] - points[CHIN]))
        mouth = float(np.linalg.norm(points[UPPER_LIP] - points[LOWER_LIP])) / height if height > 1.0 else None
        return SkinRegions(tuple(hull.astype(np.float32) for hull in hulls), mouth)

    def sample(self, rgb: npt.NDArray[np.uint8]) -> SkinSample | None:
        """Mean skin colour of the largest face, or None when no face is found."""
        regions = self.locate(rgb)
        return read_skin(rgb, regions) if regions is not None else None

    def close(self) -> None:
        self._mesh.close()
