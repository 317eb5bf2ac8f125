"""Camera intrinsics from a printed checkerboard (OpenCV's pinhole model with radial and
tangential distortion), and the undistortion the runtime applies with them.

The technician holds the board in front of the camera at several angles and distances; every
frame in which the board's inner corners are all found contributes one view.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import cv2
import numpy as np
import numpy.typing as npt

from edge.config.profile import Intrinsics
from edge.errors import EdgeError

logger = logging.getLogger(__name__)

MIN_VIEWS = 8


class IntrinsicsError(EdgeError):
    """Not enough usable checkerboard views, or OpenCV could not solve for the camera."""


def find_corners(rgb: npt.NDArray[np.uint8], pattern: tuple[int, int]) -> npt.NDArray[np.float32] | None:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found, corners = cv2.findChessboardCorners(
        grey, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    )
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-3)
    refined = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    return np.asarray(refined, dtype=np.float32)


def solve(frames: Iterable[npt.NDArray[np.uint8]], pattern: tuple[int, int], square_mm: float) -> Intrinsics:
    """Intrinsics from checkerboard views.

    Raises:
        IntrinsicsError: fewer than MIN_VIEWS views with the whole board visible.
    """
    board = np.zeros((pattern[0] * pattern[1], 3), np.float32)
    board[:, :2] = np.mgrid[0 : pattern[0], 0 : pattern[1]].T.reshape(-1, 2) * square_mm
    object_points, image_points = [], []
    size: tuple[int, int] | None = None
    for rgb in frames:
        size = (rgb.shape[1], rgb.shape[0])
        corners = find_corners(rgb, pattern)
        if corners is not None:
            object_points.append(board)
            image_points.append(corners)
    if size is None or len(image_points) < MIN_VIEWS:
        raise IntrinsicsError(
            f"the checkerboard ({pattern[0]}x{pattern[1]} inner corners) was found in {len(image_points)} frames, "
            f"{MIN_VIEWS} are needed: hold it flat, fully in view, at several angles and distances"
        )
    rms, matrix, dist, _, _ = cv2.calibrateCamera(object_points, image_points, size, np.eye(3), np.zeros(5), flags=0)
    logger.info("camera intrinsics from %d views, RMS reprojection error %.2f px", len(image_points), rms)
    return Intrinsics(
        width=size[0],
        height=size[1],
        camera_matrix=[[float(v) for v in row] for row in matrix],
        distortion=[float(v) for v in np.ravel(dist)],
        rms_error_px=float(rms),
    )
