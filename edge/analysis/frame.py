"""Per-frame analysis: detect faces, align the largest, classify its expression."""

from __future__ import annotations

import time

from edge.analysis.results import FrameAnalysis
from edge.capture.frames import VideoFrame
from edge.config.models import VisionConfig
from edge.config.profile import FULL_FRAME, Intrinsics, Region
from edge.inference.face import FaceExpressionModel
from edge.vision.align import align_face
from edge.vision.detect import FaceDetector
from edge.vision.quality import frame_luma
from edge.vision.undistort import Undistorter


class FrameAnalyzer:
    """Turns a frame into a :class:`FrameAnalysis`; the frame itself is not kept.

    Only faces whose centre lies in the room profile's client region (the client's chair) are
    considered; the others (therapist, staff) are dropped before any emotion model runs and only
    counted. Of those in the region, the largest is taken as the client's.
    """

    def __init__(
        self,
        detector: FaceDetector,
        model: FaceExpressionModel,
        config: VisionConfig,
        region: Region = FULL_FRAME,
        intrinsics: Intrinsics | None = None,
    ) -> None:
        self.detector = detector
        self.model = model
        self.config = config
        self.region = region
        # With a calibrated wide lens, faces near the edges are straightened before alignment.
        self.undistort = Undistorter(intrinsics) if intrinsics is not None else None

    def analyze(self, frame: VideoFrame) -> FrameAnalysis:
        t0 = time.perf_counter()
        rgb = self.undistort(frame.rgb) if self.undistort is not None else frame.rgb
        detected = self.detector.detect(rgb)
        h, w = rgb.shape[:2]
        faces = [f for f in detected if self.region.contains(*f.center, w, h)]
        t1 = time.perf_counter()
        probs = None
        width = score = 0.0
        if faces:
            face = faces[0]
            crop = align_face(rgb, face, self.model.input_size, self.config.crop_scale)
            probs = self.model.predict([crop])[0]
            width, score = face.w, face.score
        t2 = time.perf_counter()
        return FrameAnalysis(
            pts_s=frame.pts_s,
            faces=len(faces),
            face_width_px=width,
            detection_score=score,
            probs=probs,
            luma=frame_luma(rgb),
            detect_ms=(t1 - t0) * 1e3,
            classify_ms=(t2 - t1) * 1e3,
            ignored_faces=len(detected) - len(faces),
        )
