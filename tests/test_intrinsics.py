"""Lens calibration from checkerboard views with a known distortion, and the runtime's undistortion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.calibration.intrinsics import IntrinsicsError, find_corners, solve
from edge.vision.undistort import Undistorter

SIZE = (640, 480)
K = np.array([[420.0, 0, 320], [0, 420.0, 240], [0, 0, 1]])
DIST = np.array([-0.28, 0.08, 0.0, 0.0, 0.0])  # a wide lens' barrel distortion
PATTERN = (9, 6)


def _board(square: int = 40) -> np.ndarray:
    cols, rows = PATTERN[0] + 1, PATTERN[1] + 1
    img = np.full(((rows + 2) * square, (cols + 2) * square), 255, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                img[(r + 1) * square : (r + 2) * square, (c + 1) * square : (c + 2) * square] = 0
    return img


def _distort(ideal: np.ndarray) -> np.ndarray:
    """Render what a lens with K, DIST sees: each sensor pixel samples the ideal image where its
    undistorted ray lands."""
    u, v = np.meshgrid(np.arange(SIZE[0], dtype=np.float32), np.arange(SIZE[1], dtype=np.float32))
    pts = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
    ideal_pts = cv2.undistortPoints(pts, K, DIST, P=K).reshape(SIZE[1], SIZE[0], 2)
    return cv2.remap(ideal, ideal_pts[..., 0], ideal_pts[..., 1], cv2.INTER_LINEAR, borderValue=200)


def _views(count: int) -> list[np.ndarray]:
    """The board seen from different 3-D poses through the lens (true perspective, then distortion)."""
    board = _board()
    h, w = board.shape
    mm_per_px = 25.0 / 40
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    plane = np.float32([[x - w / 2, y - h / 2, 0] for x, y in src]) * mm_per_px
    rng = np.random.default_rng(5)
    views = []
    for _ in range(count):
        rvec = np.radians(rng.uniform(-28, 28, 3) * np.array([1.0, 1.0, 0.3]))
        tvec = np.array([rng.uniform(-25, 25), rng.uniform(-20, 20), rng.uniform(330, 420)])
        dst, _ = cv2.projectPoints(plane, rvec, tvec, K, None)
        ideal = cv2.warpPerspective(
            board, cv2.getPerspectiveTransform(src, dst.reshape(4, 2).astype(np.float32)), SIZE, borderValue=200
        )
        views.append(cv2.cvtColor(_distort(ideal), cv2.COLOR_GRAY2RGB))
    return views


@pytest.mark.unit
def test_solve_recovers_the_lens() -> None:
    views = _views(14)
    assert sum(find_corners(v, PATTERN) is not None for v in views) >= 10
    intrinsics = solve(views, PATTERN, square_mm=25.0)
    assert intrinsics.rms_error_px < 1.0
    assert intrinsics.camera_matrix[0][0] == pytest.approx(420, rel=0.05)
    # The recovered lens model must bend points as the true one does (k1 and k2 trade off, so
    # compare the mapping, not the coefficients), over the part of the frame the views covered.
    u, v = np.meshgrid(np.linspace(160, 480, 9), np.linspace(120, 360, 7))
    pts = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32).reshape(-1, 1, 2)
    truth = cv2.undistortPoints(pts, K, DIST, P=K)
    got = cv2.undistortPoints(pts, np.asarray(intrinsics.camera_matrix), np.asarray(intrinsics.distortion), P=K)
    error = np.linalg.norm((got - truth).reshape(-1, 2), axis=1)
    assert float(error.mean()) < 1.5
    assert float(error.max()) < 3.0


@pytest.mark.unit
def test_undistortion_straightens_the_board() -> None:
    views = _views(14)
    intrinsics = solve(views, PATTERN, square_mm=25.0)
    undistort = Undistorter(intrinsics)

    def curvature(rgb: np.ndarray) -> float:
        corners = find_corners(rgb, PATTERN)
        assert corners is not None
        rows = corners.reshape(PATTERN[1], PATTERN[0], 2)
        worst = 0.0
        for row in rows:  # distance of each corner from the line through the row's ends
            a, b = row[0], row[-1]
            normal = np.array([a[1] - b[1], b[0] - a[0]]) / np.linalg.norm(b - a)
            worst = max(worst, float(np.abs((row - a) @ normal).max()))
        return worst

    view = max(views, key=curvature)
    assert curvature(view) > 1.5  # the lens visibly bends the rows
    assert curvature(undistort(view)) < curvature(view) / 3
    other = np.zeros((240, 320, 3), dtype=np.uint8)
    assert undistort(other) is other and undistort.mismatched == 1  # another size passes unchanged


@pytest.mark.unit
def test_too_few_views_are_explained() -> None:
    with pytest.raises(IntrinsicsError, match=r"found in 0 frames, 8 are needed: hold it flat"):
        solve([np.zeros((480, 640, 3), dtype=np.uint8)] * 3, PATTERN, 25.0)


@pytest.mark.unit
def test_the_runtime_undistorts_with_the_profiles_lens(face_model: Path) -> None:
    from skimage import data

    from edge.analysis.frame import FrameAnalyzer
    from edge.capture.frames import VideoFrame
    from edge.config.models import OnnxRuntimeBackendConfig, VisionConfig
    from edge.inference import FaceExpressionModel, create_engine, load_manifest
    from edge.vision import FaceDetector

    intrinsics = solve(_views(14), PATTERN, square_mm=25.0)
    model = FaceExpressionModel(create_engine(face_model, load_manifest(face_model), [OnnxRuntimeBackendConfig()]))
    from edge.channels.face import FaceFrameHook

    hooks = [FaceFrameHook(model, VisionConfig())]
    analyzer = FrameAnalyzer(FaceDetector("full", 0.5), VisionConfig(), intrinsics=intrinsics, hooks=hooks)
    frame = np.full((480, 640, 3), 118, dtype=np.uint8)
    frame[0:480, 100:580] = cv2.resize(data.astronaut(), (480, 480))
    result = analyzer.analyze(VideoFrame(0.0, frame))
    assert analyzer.undistort is not None and analyzer.undistort.mismatched == 0
    assert result.faces == 1 and result.probs is not None
