"""Fusers: turn the distributions of a set of present channels into one distribution.

* :class:`LateFusion` (the default): a weighted linear pool. Channel ``c`` gets the weight
  ``w_c * r_c``: its configured weight (``fusion.weights``, 1 for a channel without one) times its
  reliability in this window, which each channel states with its vote (:meth:`Channel.vote`: the
  face's coverage x mean detection score, the voiced share / 0.5, the word count / 8, each capped
  at 1), so a face seen in half the frames or a two-word utterance counts less.
* :class:`HeadFusion`: the model pack's trained fusion head (late, early or ParallelNet's hybrid)
  when its inputs are the channels' eight-class distributions; run by the inference engine with the
  presence mask, so it works on TensorRT and ONNX Runtime alike.

Both are evaluated on any subset of the channels, which is what the Shapley contributions need.
A fused distribution is then calibrated by a temperature (``fusion.temperature``, fitted on held-out
windows with :func:`clinic_signals.temperature.fit_temperature`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError
from edge.inference.base import InferenceEngine

Probs = npt.NDArray[np.float64]


class Fuser(Protocol):
    method: str

    def fuse(self, probs: Mapping[str, Probs], reliability: Mapping[str, float]) -> Probs:
        """The fused distribution of the channels in ``probs`` (at least one)."""
        ...


class LateFusion:
    method = "late"

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)

    def fuse(self, probs: Mapping[str, Probs], reliability: Mapping[str, float]) -> Probs:
        w = np.array([self.weights.get(c, 1.0) * max(reliability.get(c, 1.0), 1e-3) for c in probs])
        stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probs.values()])
        if w.sum() <= 0:  # every channel given weight 0: no evidence, the uniform distribution
            return np.full(stacked.shape[1], 1.0 / stacked.shape[1])
        fused: Probs = (w[:, None] * stacked).sum(axis=0) / w.sum()
        out: Probs = fused / fused.sum()
        return out


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
