"""Per-frame analysis: detect faces, align the largest, classify its expression, read its skin colour."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from edge.capture.frames import VideoFrame
from edge.config.models import VisionConfig
from edge.config.profile import FULL_FRAME, Intrinsics, Region
from edge.inference.face import FaceExpressionModel
from edge.results import FaceCrop, FrameAnalysis
from edge.vision.align import align_face, landmarks_in_crop
from edge.vision.detect import FaceDetection, FaceDetector
from edge.vision.quality import frame_luma
from edge.vision.skin import SkinRegions, SkinSampler, read_skin
from edge.vision.undistort import Undistorter

SKIN_MARGIN = 1.6  # side of the square the face mesh sees, relative to the detected face box


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
        *,
        classify: bool = True,
        skin: SkinSampler | None = None,
        skin_every: int = 1,
        keep_crop: bool = False,
    ) -> None:
        self.detector = detector
        self.model = model
        self.classify = classify  # False when the room's face channel is off
        self.skin = skin  # the pulse channel's face mesh, when that channel is on
        self.skin_every = skin_every  # channels.pulse.mesh_every
        self._since_mesh = 0  # analysed frames since the face mesh last ran
        # the last mesh's regions in frame coordinates, with the eyes' midpoint they belong to
        self._regions: tuple[SkinRegions, tuple[float, float]] | None = None
        self.keep_crop = keep_crop  # explanations may need the aligned crop (memory only, with its window)
        self.config = config
        self.region = region
        # With a calibrated wide lens, faces near the edges are straightened before alignment.
        self.undistort = Undistorter(intrinsics) if intrinsics is not None else None
        self._since_detect = 0  # analysed frames since the detector last ran
        self._last: tuple[list[FaceDetection], int] = ([], 0)  # (faces in the region, ignored) it found

    def _detect(self, rgb: npt.NDArray[np.uint8]) -> tuple[list[FaceDetection], int]:
        """(faces in the client region, faces ignored). With
        ``vision.detect_every`` N > 1 the detector runs on every Nth frame and the frames between
        reuse its faces (a client in a chair moves little in N/10 s); a frame without faces is
        always followed by a fresh detection."""
        if self._since_detect % self.config.detect_every == 0 or not self._last[0]:
            detected = self.detector.detect(rgb)
            h, w = rgb.shape[:2]
            faces = [f for f in detected if self.region.contains(*f.center, w, h)]
            self._last = (faces, len(detected) - len(faces))
            self._since_detect = 1
            return faces, self._last[1]
        self._since_detect += 1
        return self._last[0], 0

    def analyze(self, frame: VideoFrame) -> FrameAnalysis:
        t0 = time.perf_counter()
        rgb = self.undistort(frame.rgb) if self.undistort is not None else frame.rgb
        faces, ignored = self._detect(rgb)
        t1 = time.perf_counter()
        probs = None
        kept = None
        width = score = 0.0
        if faces:
            face = faces[0]
            if self.classify:
                size = self.model.input_size
                crop = align_face(rgb, face, size, self.config.crop_scale)
                probs = self.model.predict([crop])[0]
                if self.keep_crop:
                    marks = landmarks_in_crop(face, size, self.config.crop_scale)
                    kept = FaceCrop(crop, (marks["right_eye"], marks["left_eye"]), marks["nose_tip"])
            width, score = face.w, face.score
        t2 = time.perf_counter()
        skin_rgb = None
        if self.skin is not None and faces:
            skin_rgb = self._skin(rgb, faces[0])
        elif not faces:
            self._regions = None
        t3 = time.perf_counter()
        return FrameAnalysis(
            pts_s=frame.pts_s,
            faces=len(faces),
            face_width_px=width,
            detection_score=score,
            probs=probs,
            luma=frame_luma(rgb),
            detect_ms=(t1 - t0) * 1e3,
            classify_ms=(t2 - t1) * 1e3,
            ignored_faces=ignored,
            skin_rgb=skin_rgb,
            skin_ms=(t3 - t2) * 1e3,
            crop=kept,
        )

    def _skin(self, rgb: npt.NDArray[np.uint8], face: FaceDetection) -> tuple[float, float, float] | None:
        """Mean skin colour of the client's face: the face mesh runs on a margin around the detected
        box, so only the client's face (not another in the frame) is read. With
        ``channels.pulse.mesh_every`` N > 1 the mesh runs on every Nth frame; the frames between read
        the last mesh's regions moved with the midpoint of the detected eyes (steadier than the box's
        centre; the face's size changes too little in N/10 s to be worth following)."""
        if self.skin is None:
            return None
        (rx, ry), (lx, ly) = face.right_eye, face.left_eye
        eyes = ((rx + lx) / 2, (ry + ly) / 2)
        if self._regions is not None and self._since_mesh % self.skin_every != 0:
            self._since_mesh += 1
            regions, then = self._regions
            sample = read_skin(rgb, regions.moved(then, eyes))
            return sample.rgb if sample is not None else None
        self._regions = None
        h, w = rgb.shape[:2]
        cx, cy = face.x + face.w / 2, face.y + face.h / 2
        half = max(face.w, face.h) * SKIN_MARGIN / 2
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(cx + half) + 1, w), min(int(cy + half) + 1, h)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        found = self.skin.locate(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if found is None:
            return None
        regions = found.moved((0.0, 0.0), (float(x0), float(y0)))  # crop -> frame coordinates
        self._regions, self._since_mesh = (regions, eyes), 1
        sample = read_skin(rgb, regions)
        return sample.rgb if sample is not None else None
