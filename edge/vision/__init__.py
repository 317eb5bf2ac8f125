"""Per-frame vision: face detection (MediaPipe), alignment and frame quality."""

from edge.vision.align import align_face
from edge.vision.detect import FaceDetection, FaceDetector
from edge.vision.quality import frame_luma

__all__ = ["FaceDetection", "FaceDetector", "align_face", "frame_luma"]
