"""Aligned face crops for the tests of the face model and its explanations: MediaPipe's detection and
the room's alignment, on real photographs."""

from __future__ import annotations

import numpy as np

from edge.config.models import VisionConfig
from edge.results import FaceCrop
from edge.vision.align import align_face, landmarks_in_crop
from edge.vision.detect import FaceDetector


def face_crop(image: np.ndarray, size: int) -> FaceCrop:
    """The first face in ``image``, aligned to ``size`` pixels as the room aligns it, with its eyes and
    nose in the crop."""
    detector = FaceDetector("full", 0.5)
    try:
        face = detector.detect(image)[0]
    finally:
        detector.close()
    scale = VisionConfig().crop_scale
    marks = landmarks_in_crop(face, size, scale)
    pixels = align_face(image, face, size, scale)
    return FaceCrop(pixels, (marks["right_eye"], marks["left_eye"]), marks["nose_tip"])
