"""The face channel: the mean of the frames' face-expression distributions over a window.

Per frame (:class:`FaceFrameHook`, run by :class:`edge.analysis.frame.FrameAnalyzer` after it found
the client's face): alignment and the face model; a window only averages the frames' results. The channel
always reports coverage and quality; with ``channels.face.enabled = false`` it has no distribution.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from typing_extensions import override

from clinic_signals.fusion import ChannelVote
from contract.classes import CLASSES, mean_distribution
from contract.payload import FaceSummary, Probabilities
from edge.channels.base import (
    Channel,
    ChannelState,
    ExplainModels,
    FrameContext,
    FrameModels,
    LoadedModels,
    Stateless,
    WindowContext,
    most_common,
)
from edge.config.models import AppConfig, VisionConfig
from edge.explain.maps import face_occlusion
from edge.inference.face import FaceExpressionModel
from edge.results import (
    FLAG_LOW_LIGHT,
    FLAG_MULTIPLE_FACES,
    FLAG_NO_FACE,
    FLAG_NO_VIDEO,
    FLAG_SMALL_FACE,
    GOOD,
    FaceChannel,
    FaceCrop,
    FaceQuality,
)
from edge.vision.align import align_face, landmarks_in_crop

MIN_FACE_COVERAGE = 0.2  # below this share of frames with a face, the window has no face result
MULTI_FACE_SHARE = 0.3  # share of frames with several faces that flags the window


class FaceFrameHook:
    """Per frame: the client's face aligned on its eyes, cropped to the model's input and classified;
    the aligned crop is kept (memory only, with its window) when explanations may need it."""

    def __init__(self, model: FaceExpressionModel, vision: VisionConfig, *, keep_crop: bool = False) -> None:
        self.model = model
        self.vision = vision
        self.keep_crop = keep_crop

    def __call__(self, frame: FrameContext) -> None:
        t0 = time.perf_counter()
        face = frame.face
        if face is not None:
            size = self.model.input_size
            crop = align_face(frame.rgb, face, size, self.vision.crop_scale)
            frame.probs = self.model.predict([crop])[0]
            if self.keep_crop:
                marks = landmarks_in_crop(face, size, self.vision.crop_scale)
                frame.crop = FaceCrop(crop, (marks["right_eye"], marks["left_eye"]), marks["nose_tip"])
        frame.timing["classify_ms"] = (time.perf_counter() - t0) * 1e3


class FaceState(Stateless):
    def __init__(self, vision: VisionConfig) -> None:
        self.vision = vision

    def analyze(self, context: WindowContext) -> FaceChannel | None:
        window, flags, timing = context.window, context.flags, context.timing
        frames = window.frames
        if not window.video_present or not frames:
            flags.append(FLAG_NO_VIDEO)
            return None
        timing["face_detect_ms"] = round(sum(f.detect_ms for f in frames), 3)
        timing["face_classify_ms"] = round(sum(f.classify_ms for f in frames), 3)
        with_face = [f for f in frames if f.faces > 0]
        coverage = len(with_face) / len(frames)
        face_flags: list[str] = []
        if sum(f.faces > 1 for f in frames) >= MULTI_FACE_SHARE * len(frames):
            face_flags.append(FLAG_MULTIPLE_FACES)
        if float(np.median([f.luma for f in frames])) < self.vision.low_light_luma:
            face_flags.append(FLAG_LOW_LIGHT)
        probs = None
        if coverage < MIN_FACE_COVERAGE:
            face_flags.append(FLAG_NO_FACE)
        else:
            probs = mean_distribution([f.probs.tolist() for f in with_face if f.probs is not None])
            if float(np.median([f.face_width_px for f in with_face])) < self.vision.min_face_px:
                face_flags.append(FLAG_SMALL_FACE)
        flags.extend(face_flags)
        quality: FaceQuality = "good"
        for flag in (FLAG_NO_FACE, FLAG_SMALL_FACE, FLAG_LOW_LIGHT, FLAG_MULTIPLE_FACES):
            if flag in face_flags:
                quality = flag  # type: ignore[assignment]  # the face flags are the face qualities
                break
        return FaceChannel(
            frames=len(frames),
            coverage=round(coverage, 4),
            max_faces=max(f.faces for f in frames),
            mean_detection_score=round(float(np.mean([f.detection_score for f in with_face])) if with_face else 0.0, 4),
            probs=probs,
            quality=quality,
        )


class FaceExplainer:
    """Occlusion map of the window's most confident frame for the window's top face class."""

    def __init__(self, model: FaceExpressionModel, grid: int) -> None:
        self.model = model
        self.grid = grid

    def __call__(self, context: WindowContext, result: FaceChannel | None) -> dict[str, Any] | None:
        if result is None or result.probs is None:
            return None
        best = int(np.argmax(result.probs))
        crops = [f for f in context.window.frames if f.crop is not None and f.probs is not None]
        if not crops:
            return None
        chosen = max(crops, key=lambda f: float(f.probs[best]) if f.probs is not None else 0.0)
        if chosen.crop is None:
            return None
        grid, regions = face_occlusion(self.model, chosen.crop, best, self.grid)
        return {
            "map": tuple(tuple(round(float(v), 4) for v in row) for row in grid),
            "regions": regions,
            "label": CLASSES[best],
        }


class Face(Channel):
    name = "face"
    result = FaceChannel
    votes = True
    summary_model = FaceSummary

    @override
    def session(self, config: AppConfig, models: LoadedModels, *, live: bool) -> FaceState:
        return FaceState(config.vision)

    @override
    def frame_hook(self, config: AppConfig, models: FrameModels) -> FaceFrameHook | None:
        """None when the room switched the face channel off: faces are still found and counted."""
        if not config.channels.face.enabled or models.face is None:
            return None
        return FaceFrameHook(models.face, config.vision, keep_crop=config.explain.when != "off")

    @override
    def explainer(self, config: AppConfig, state: ChannelState, models: ExplainModels) -> FaceExplainer | None:
        if not config.channels.face.enabled or models.face is None:
            return None
        return FaceExplainer(models.face, config.explain.grid)

    @override
    def vote(self, result: FaceChannel | None) -> ChannelVote:
        """Reliability: the share of frames with a face times the mean detection score."""
        if result is None:
            return ChannelVote(self.name, None, "")
        return ChannelVote(self.name, result.probs, result.quality, result.coverage * result.mean_detection_score)

    @override
    def present(self, result: FaceChannel | None) -> bool:
        return result is not None and result.coverage > 0

    @override
    def summarize(self, results: Sequence[FaceChannel]) -> FaceSummary:
        good = [f for f in results if f.quality == GOOD]
        return FaceSummary(
            coverage=round(float(np.mean([f.coverage for f in results])), 4),
            max_faces=max(f.max_faces for f in results),
            probs=Probabilities.of(mean_distribution([f.probs for f in results if f.probs is not None])),
            quality=GOOD if good else most_common([f.quality for f in results]),  # type: ignore[arg-type]
        )

    @override
    def restore(self, raw: Mapping[str, Any]) -> FaceChannel:
        probs = tuple(raw["probs"]) if raw.get("probs") else None
        return FaceChannel(
            raw["frames"],
            raw["coverage"],
            raw["max_faces"],
            raw["mean_detection_score"],
            probs,
            raw.get("quality", "good"),
        )
