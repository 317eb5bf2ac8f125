"""The engine interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from contract.manifest import ExtraInput, InputSpec, ModelManifest

# Items per model run where a caller has many (an explanation's occluded variants, an utterance's
# speaker partials). A run's activations grow with its batch: 65 face crops in one run of the face
# model took 50-116 MiB more resident memory for that moment, and 2.4 times as long on a CPU core as
# runs of 8 (cache-sized activations). 8 is also the largest batch a TensorRT engine takes at the
# build tool's default (``clinic-export engine --max-batch``).
RUN_ITEMS = 8


class InferenceEngine(ABC):
    """Runs one model. ``infer`` takes a float32 batch in the model's input layout and returns the
    first output as float32; ``infer_many`` takes a batch of any size, in runs the engine takes.
    Engines warm up in their constructor."""

    name: ClassVar[str]
    # The largest batch one run takes (a TensorRT engine's optimisation profile); None: any.
    max_batch: int | None = None

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

    def run_items(self) -> int:
        """Items per run for :meth:`infer_many`: :data:`RUN_ITEMS`, or fewer where the engine
        takes fewer."""
        return min(RUN_ITEMS, self.max_batch) if self.max_batch else RUN_ITEMS

    def infer_many(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``infer`` over a batch of any size, :meth:`run_items` at a time, outputs in order."""
        step = self.run_items()
        if batch.shape[0] <= step:
            return self.infer(batch)
        return np.concatenate([self.infer(batch[i : i + step]) for i in range(0, batch.shape[0], step)])

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
