"""One engine interface over ONNX Runtime (CPU default) and TensorRT (Jetson/GPU)."""

from edge.inference.engine import InferenceEngine, create_engine
from edge.inference.face import FaceExpressionModel
from edge.inference.manifest import ModelManifest, load_manifest

__all__ = ["FaceExpressionModel", "InferenceEngine", "ModelManifest", "create_engine", "load_manifest"]
