"""The face-expression channel: aligned grey crops in, the product's eight classes out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError
from edge.inference.base import InferenceEngine
from edge.inference.manifest import ProductClasses


class FaceExpressionModel:
    """Wraps an engine with the manifest's preprocessing and label map."""

    def __init__(self, engine: InferenceEngine) -> None:
        manifest = engine.manifest
        if manifest.input.color != "gray" or len(manifest.input.shape) != 4:
            raise ModelError(f"{manifest.name}: expected a grey NCHW face model, manifest says {manifest.input}")
        size = manifest.input.shape[2]
        if size is None or size != manifest.input.shape[3]:
            raise ModelError(f"{manifest.name}: expected a square input, got {manifest.input.shape}")
        self.engine = engine
        self.input_size: int = size
        self._scale = np.float32(manifest.input.pixel_scale)
        self._offset = np.float32(manifest.input.pixel_offset)
        self._classes = ProductClasses(manifest)

    def predict(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Class probabilities ``(N, 8)`` for ``N`` aligned grey crops of ``input_size`` pixels (in runs
        of a few: an explanation's occluded variants are dozens)."""
        if not crops:
            return np.zeros((0, self._classes.mapping.shape[1]), dtype=np.float32)
        batch = np.stack(crops).astype(np.float32)[:, None] * self._scale + self._offset
        return self._classes(self.engine.infer_many(batch))
