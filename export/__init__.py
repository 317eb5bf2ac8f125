"""clinic-edge model toolchain: PyTorch definitions, weight import, ONNX export and manifests.

This package may import torch. It never imports the ``edge`` runtime; the two meet only through the
artefacts it writes (ONNX files and their JSON manifests).
"""
