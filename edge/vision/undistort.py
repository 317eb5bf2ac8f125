"""Lens undistortion with the room profile's camera intrinsics (for wide lenses)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge.config.profile import Intrinsics


class Undistorter:
    """Remaps frames of the calibrated size; frames of another size pass unchanged (and are counted)."""

    def __init__(self, intrinsics: Intrinsics) -> None:
        self.size = (intrinsics.width, intrinsics.height)
        matrix = np.asarray(intrinsics.camera_matrix, dtype=np.float64)
        dist = np.asarray(intrinsics.distortion, dtype=np.float64)
        new, _ = cv2.getOptimalNewCameraMatrix(matrix, dist, self.size, 0)
        self._maps = cv2.initUndistortRectifyMap(matrix, dist, np.eye(3), new, self.size, cv2.CV_16SC2)
        self.mismatched = 0

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            self.mismatched += 1
            return rgb
        return np.asarray(cv2.remap(rgb, self._maps[0], self._maps[1], cv2.INTER_LINEAR), dtype=np.uint8)
