"""Per-frame analysis: find the client's face, then the channels' per-frame hooks on it."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.capture.frames import VideoFrame
from edge.channels.base import FrameContext, FrameHook
from edge.config.models import VisionConfig
from edge.config.profile import FULL_FRAME, Intrinsics, Region
from edge.results import FrameAnalysis
from edge.vision.detect import FaceDetection, FaceDetector
from edge.vision.quality import frame_luma
from edge.vision.undistort import Undistorter


class FrameAnalyzer:
    """Turns a frame into a :class:`FrameAnalysis`; the frame itself is not kept.

    Only faces whose centre lies in the room profile's client region (the client's chair) are
    considered; the others (therapist, staff) are dropped before any emotion model runs and only
    counted. Of those in the region, the largest is taken as the client's, and the channels'
    per-frame hooks (:meth:`edge.channels.base.Channel.frame_hook`: the face model, the pulse's skin
    colour) run on it.
    """

    def __init__(
        self,
        detector: FaceDetector,
        config: VisionConfig,
        region: Region = FULL_FRAME,
        intrinsics: Intrinsics | None = None,
        *,
        hooks: Sequence[FrameHook] = (),
    ) -> None:
        self.detector = detector
        self.hooks = tuple(hooks)
        self.config = config
        self.region = region
        # With a calibrated wide lens, faces near the edges are straightened before alignment.
        self.undistort = Undistorter(intrinsics) if intrinsics is not None else None
        self._since_detect = 0  # analysed frames since the detector last ran
        self._last: tuple[list[FaceDetection], int] = ([], 0)  # (faces in the region, ignored) it found

    def _detect(self, rgb: npt.NDArray[np.uint8], every: int) -> tuple[list[FaceDetection], int]:
        """(faces in the client region, faces ignored). With
        ``vision.detect_every`` N > 1 (or ``every``, while the analysis is behind) the detector runs on
        every Nth frame and the frames between reuse its faces (a client in a chair moves little in
        N/10 s); a frame without faces is always followed by a fresh detection."""
        if self._since_detect >= every or not self._last[0]:
            detected = self.detector.detect(rgb)
            h, w = rgb.shape[:2]
            faces = [f for f in detected if self.region.contains(*f.center, w, h)]
            self._last = (faces, len(detected) - len(faces))
            self._since_detect = 1
            return faces, self._last[1]
        self._since_detect += 1
        return self._last[0], 0

    def analyze(self, frame: VideoFrame, *, behind: bool = False) -> FrameAnalysis:
        """``behind``: frames wait for the analysis, so detection and the hooks may reuse their last
        results (``vision.behind_every``) until it has caught up."""
        t0 = time.perf_counter()
        rgb = self.undistort(frame.rgb) if self.undistort is not None else frame.rgb
        reuse = self.config.behind_every if behind else 1
        faces, ignored = self._detect(rgb, max(self.config.detect_every, reuse))
        t1 = time.perf_counter()
        face = faces[0] if faces else None
        context = FrameContext(rgb, face, reuse=reuse)
        for hook in self.hooks:
            hook(context)
        return FrameAnalysis(
            pts_s=frame.pts_s,
            faces=len(faces),
            face_width_px=face.w if face is not None else 0.0,
            detection_score=face.score if face is not None else 0.0,
            probs=context.probs,
            luma=frame_luma(rgb),
            detect_ms=(t1 - t0) * 1e3,
            classify_ms=context.timing.get("classify_ms", 0.0),
            ignored_faces=ignored,
            skin_rgb=context.skin_rgb,
            skin_ms=context.timing.get("skin_ms", 0.0),
            crop=context.crop,
            values=context.values,
            hook_ms=context.timing,
        )
