"""The model pack's trained fusion head (late, early or ParallelNet's hybrid) as a fuser, when its
inputs are the channels' eight-class distributions: run by the inference engine with the presence
mask, so it works on TensorRT and ONNX Runtime alike (late fusion itself: :mod:`clinic_signals.fusion`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clinic_signals.fusion import Probs
from edge.errors import ModelError
from edge.inference.base import InferenceEngine


class HeadFusion:
    method = "head"

    def __init__(self, engine: InferenceEngine, voters: Sequence[str]) -> None:
        """``voters``: the room's channels that have a class distribution."""
        manifest = engine.manifest
        modalities = list(manifest.input.modalities or [])
        dims = list(manifest.input.dims or [])
        if manifest.task != "fusion" or not modalities:
            raise ModelError(f"{manifest.name} is not a fusion head (task {manifest.task!r})")
        unknown = set(modalities) - set(voters)
        if unknown or any(d != len(manifest.output.labels) for d in dims):
            raise ModelError(
                f"{manifest.name} fuses {modalities} with widths {dims}; the room can feed it only the channels "
                f"{list(voters)} as eight-class distributions (train it on those, or use fusion.method = 'late')"
            )
        self.engine = engine
        self.name = manifest.name
        self.modalities = modalities
        self.width = dims[0]

    def fuse(self, probs: Mapping[str, Probs], reliability: Mapping[str, float]) -> Probs:  # noqa: ARG002 - learned
        features = np.zeros((1, self.width * len(self.modalities)), dtype=np.float32)
        present = np.zeros((1, len(self.modalities)), dtype=np.float32)
        for i, name in enumerate(self.modalities):
            if name in probs:
                features[0, i * self.width : (i + 1) * self.width] = probs[name]
                present[0, i] = 1.0
        if not present.any():
            raise ValueError(f"none of the channels {sorted(probs)} is an input of {self.name}")
        raw = np.asarray(self.engine.run({"features": features, "present": present})[0], dtype=np.float64)[0]
        out: Probs = raw / raw.sum()
        return out
