"""The engine interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from contract.manifest import ExtraInput, InputSpec, ModelManifest


class InferenceEngine(ABC):
    """Runs one model. ``infer`` takes a float32 batch in the model's input layout and returns the
    first output as float32. Engines warm up in their constructor."""

    name: ClassVar[str]

    def __init__(self, model_path: Path, manifest: ModelManifest) -> None:
        self.model_path = model_path
        self.manifest = manifest
        self.requested: str = self.name  # the chain's first backend (set by the chain)
        self.fallback_reason: str | None = None  # why the requested backend did not load, if it did not

    @property
    def degraded(self) -> bool:
        """Running on a later backend of the chain than the one asked for (e.g. the CPU for TensorRT)."""
        return self.fallback_reason is not None

    @property
    def label(self) -> str:
        """Backend and device, as logged and exported in metrics (e.g. ``onnxruntime-cpu``)."""
        return self.name

    @abstractmethod
    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...

    @abstractmethod
    def run(self, feeds: dict[str, npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        """Every output, in the model's order, for named inputs (models with several inputs)."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release native resources."""

    def _warmup_batch(self) -> npt.NDArray[np.float32]:
        shape = [1 if d is None else d for d in self.manifest.input.shape]
        return np.zeros(shape, dtype=np.float32)

    def _warmup_feeds(self) -> dict[str, npt.NDArray[np.generic]]:
        """One item for every input; variable-length axes get 8 (token ids of 1 = a real token)."""
        specs: list[InputSpec | ExtraInput] = [self.manifest.input, *self.manifest.extra_inputs]
        feeds: dict[str, npt.NDArray[np.generic]] = {}
        for spec in specs:
            shape = [1 if i == 0 else (8 if d is None else d) for i, d in enumerate(spec.shape)]
            feeds[spec.name] = np.ones(shape, dtype=np.int64 if spec.dtype == "int64" else np.float32)
        return feeds

    def warm_up(self) -> None:
        if self.manifest.extra_inputs or self.manifest.input.dtype != "float32":
            self.run(self._warmup_feeds())
        else:
            self.infer(self._warmup_batch())
