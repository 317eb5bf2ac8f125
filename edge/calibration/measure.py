"""Measurements of a room's picture and sound. Frames and samples are reduced to numbers here
and dropped; nothing of them is kept."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.calibration.intrinsics import find_corners
from edge.capture.pipeline import GstCapture
from edge.capture.source import SourceSpec
from edge.config.models import AppConfig
from edge.config.profile import Region
from edge.vision.detect import FaceDetection, FaceDetector

logger = logging.getLogger(__name__)

_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


@dataclass(frozen=True)
class FrameStats:
    """One frame, reduced to numbers."""

    faces_in_region: int
    faces_elsewhere: int
    face_width_px: float | None
    edge_margin: float | None  # the face box's nearest distance inside the region's edges, in face widths (<0: cut)
    centre_dx: float | None  # face centre from the region's centre, in region sizes (signed: which way to turn)
    centre_dy: float | None
    yaw_ratio: float | None
    face_luma: float | None
    face_contrast: float | None
    background_luma: float | None
    sharpness: float | None  # variance of the Laplacian on the face at 128 px
    highlights: float  # share of pixels at 250 or above
    shadows: float  # share at 5 or below
    noise_sigma: float  # Immerkaer's estimate of the noise standard deviation (grey levels)


@dataclass
class Measurements:
    frames: list[FrameStats] = field(default_factory=list)
    audio: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    audio_rate: int = SAMPLE_RATE
    has_audio: bool = False
    duration_s: float = 0.0
    frames_dropped: int = 0
    configured_fps: int = 10
    frame_size: tuple[int, int] = (0, 0)
    preview: npt.NDArray[np.uint8] | None = None  # kept only when the technician asks for it
    preview_has_face: bool = False  # whether the preview shows a face in the client region
    frame_pts: list[float] = field(default_factory=list)  # stream time of each measured frame
    frame_luma: list[float] = field(default_factory=list)  # mean grey level of each frame
    audio_start_s: float = 0.0  # stream time of audio[0]
    board_views: list[npt.NDArray[np.uint8]] = field(default_factory=list)  # frames showing the checkerboard


def noise_sigma(grey: npt.NDArray[np.uint8]) -> float:
    """Immerkaer (1996), fast noise variance estimation: sigma from a Laplacian-difference filter."""
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    response = cv2.filter2D(grey.astype(np.float64), -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6 * (w - 2) * (h - 2)))


def measure_frame(
    rgb: npt.NDArray[np.uint8], detector: FaceDetector, region: Region, faces: list[FaceDetection] | None = None
) -> FrameStats:
    """One frame reduced to numbers; ``faces``: the frame's detections when the caller has them."""
    h, w = rgb.shape[:2]
    grey: npt.NDArray[np.uint8] = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    faces = detector.detect(rgb) if faces is None else faces
    inside = [f for f in faces if region.contains(*f.center, w, h)]
    highlights = float((grey >= 250).mean())
    shadows = float((grey <= 5).mean())
    sigma = noise_sigma(grey)
    if not inside:
        return FrameStats(
            0, len(faces), None, None, None, None, None, None, None, None, None, highlights, shadows, sigma
        )
    face = inside[0]
    x0, y0 = max(0, int(face.x)), max(0, int(face.y))
    x1, y1 = min(w, int(face.x + face.w)), min(h, int(face.y + face.h))
    crop = grey[y0:y1, x0:x1]
    mask = np.ones_like(grey, dtype=bool)
    mask[y0:y1, x0:x1] = False
    sharp = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA) if crop.size else crop
    cx, cy = face.center
    rcx, rcy = (region.x + region.w / 2) * w, (region.y + region.h / 2) * h
    dx, dy = (cx - rcx) / (region.w * w), (cy - rcy) / (region.h * h)
    rx0, ry0, rx1, ry1 = region.x * w, region.y * h, (region.x + region.w) * w, (region.y + region.h) * h
    margin = min(face.x - rx0, face.y - ry0, rx1 - (face.x + face.w), ry1 - (face.y + face.h))
    return FrameStats(
        faces_in_region=len(inside),
        faces_elsewhere=len(faces) - len(inside),
        face_width_px=face.w,
        edge_margin=margin / face.w if face.w > 0 else None,
        centre_dx=dx,
        centre_dy=dy,
        yaw_ratio=face.yaw_ratio,
        face_luma=float(crop.mean()) if crop.size else None,
        face_contrast=float(crop.std()) if crop.size else None,
        background_luma=float(grey[mask].mean()) if mask.any() else None,
        sharpness=float(cv2.Laplacian(sharp, cv2.CV_64F).var()) if crop.size else None,
        highlights=highlights,
        shadows=shadows,
        noise_sigma=sigma,
    )


def measure_source(
    spec: SourceSpec,
    config: AppConfig,
    region: Region,
    duration_s: float,
    detector: FaceDetector,
    *,
    keep_preview: bool = False,
    board: tuple[int, int] | None = None,
    max_board_views: int = 40,
    on_progress: Callable[[Measurements], None] | None = None,
    progress_every_s: float = 0.5,
) -> Measurements:
    """Run the room's source for ``duration_s`` (files at their own speed, like a camera)."""
    out = Measurements(configured_fps=config.capture.analysis_fps)
    chunks: list[npt.NDArray[np.float32]] = []
    capture = GstCapture.from_config(spec, config.capture, realtime_files=True)  # files play like a camera
    started = time.monotonic()
    next_progress = started + progress_every_s
    with capture:
        while time.monotonic() - started < duration_s:
            if on_progress is not None and time.monotonic() >= next_progress:
                out.duration_s = time.monotonic() - started
                out.frames_dropped = capture.video.dropped
                out.has_audio = capture.has_audio
                if chunks:
                    out.audio = np.concatenate(chunks)
                on_progress(out)
                next_progress += progress_every_s
            while (chunk := capture.audio.get_nowait()) is not None:
                if not chunks:
                    out.audio_start_s = chunk.pts_s
                chunks.append(chunk.samples)
            frame = capture.video.get(timeout=0.05)
            if frame is not None:
                out.frame_size = (frame.rgb.shape[1], frame.rgb.shape[0])
                out.frame_pts.append(frame.pts_s)
                out.frame_luma.append(float(frame.rgb[::4, ::4].mean()))
                out.frames.append(measure_frame(frame.rgb, detector, region))
                has_face = out.frames[-1].faces_in_region > 0
                if keep_preview and (out.preview is None or (has_face and not out.preview_has_face)):
                    # a frame with the client's face; until one comes, the first (the region may miss her)
                    out.preview, out.preview_has_face = frame.rgb.copy(), has_face
                if (
                    board is not None
                    and len(out.board_views) < max_board_views
                    and len(out.frames) % 3 == 0  # neighbouring frames add little
                    and find_corners(frame.rgb, board) is not None
                ):
                    out.board_views.append(frame.rgb.copy())
            if capture.error or (capture.eos.is_set() and capture.video.qsize() == 0):
                break
        out.duration_s = time.monotonic() - started
        out.frames_dropped = capture.video.dropped
        out.has_audio = capture.has_audio
    if capture.error:
        logger.error("capture stopped: %s", capture.error)
    if chunks:
        out.audio = np.concatenate(chunks)
    return out
