"""Typed results passed between stages. None of them holds pixels, samples or landmarks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.labels import CLASSES

# Quality flags a window can carry.
FLAG_NO_FACE = "no_face"
FLAG_MULTIPLE_FACES = "multiple_faces"
FLAG_SMALL_FACE = "small_face"
FLAG_LOW_LIGHT = "low_light"
FLAG_SILENCE = "silence"
FLAG_CLIPPING = "audio_clipping"
FLAG_NO_VIDEO = "no_video"
FLAG_NO_AUDIO = "no_audio"
QUALITY_FLAGS: tuple[str, ...] = (
    FLAG_NO_FACE,
    FLAG_MULTIPLE_FACES,
    FLAG_SMALL_FACE,
    FLAG_LOW_LIGHT,
    FLAG_SILENCE,
    FLAG_CLIPPING,
    FLAG_NO_VIDEO,
    FLAG_NO_AUDIO,
)


@dataclass(frozen=True, slots=True)
class FrameAnalysis:
    """What one analysed frame contributes to its windows."""

    pts_s: float
    faces: int  # faces in the client region
    face_width_px: float  # of the analysed (largest) face; 0 without a face
    detection_score: float
    probs: npt.NDArray[np.float32] | None  # (8,) face-expression probabilities of the largest face
    luma: float
    detect_ms: float
    classify_ms: float
    ignored_faces: int = 0  # faces outside the client region, never analysed

    def __post_init__(self) -> None:
        if self.probs is not None and self.probs.shape != (len(CLASSES),):
            raise ValueError(f"expected {len(CLASSES)} class probabilities, got shape {self.probs.shape}")


@dataclass(frozen=True, slots=True)
class FaceChannel:
    frames: int  # analysed frames in the window
    coverage: float  # fraction of them with a face
    max_faces: int
    mean_detection_score: float
    probs: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class VoiceChannel:
    voiced_ratio: float
    level_dbfs: float
    noise_floor_dbfs: float
    clipped_ratio: float


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window's result: the unit that is stored and summarised."""

    session_id: str
    index: int
    start_s: float  # stream time
    end_s: float
    started_at: str  # UTC ISO-8601 wall time of the window start
    probs: tuple[float, ...] | None  # fused distribution over CLASSES; None when no channel spoke
    label: str | None
    confidence: float | None
    face: FaceChannel | None
    voice: VoiceChannel | None
    flags: tuple[str, ...]
    timing_ms: dict[str, float] = field(default_factory=dict)
    ready_monotonic: float = 0.0  # when the window's last media arrived (for latency)

    def __post_init__(self) -> None:
        if self.probs is not None:
            if len(self.probs) != len(CLASSES):
                raise ValueError(f"expected {len(CLASSES)} probabilities, got {len(self.probs)}")
            if abs(sum(self.probs) - 1.0) > 1e-3:
                raise ValueError(f"probabilities must sum to 1, got {sum(self.probs):.4f}")
        unknown = set(self.flags) - set(QUALITY_FLAGS)
        if unknown:
            raise ValueError(f"unknown quality flags {sorted(unknown)}")
        if self.end_s <= self.start_s:
            raise ValueError(f"window end {self.end_s} is not after its start {self.start_s}")
