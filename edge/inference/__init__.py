"""One engine interface over ONNX Runtime (CPU default) and TensorRT (Jetson/GPU)."""

from edge.inference.base import InferenceEngine
from edge.inference.engine import create_engine
from edge.inference.face import FaceExpressionModel
from edge.inference.manifest import load_manifest

__all__ = ["FaceExpressionModel", "InferenceEngine", "create_engine", "load_manifest"]
