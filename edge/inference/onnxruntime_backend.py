"""ONNX Runtime backend: the CPU default, and CUDA where onnxruntime-gpu is installed."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from contract.manifest import ModelManifest
from edge.config.models import OnnxRuntimeBackendConfig
from edge.errors import BackendUnavailableError, ModelError
from edge.inference.base import InferenceEngine

# ONNX Runtime's PyPI builds carry a telemetry component that writes a session file (".ses") to
# the temporary folder; the appliance writes nothing but its database, so it is switched off. The
# variable is read when onnxruntime is first imported, hence here, before that import.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

try:
    import onnxruntime as ort

    ORT_IMPORT_ERROR: str | None = None
except ImportError as _exc:  # pragma: no cover - depends on the install
    ort = None
    ORT_IMPORT_ERROR = str(_exc)

logger = logging.getLogger(__name__)

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeEngine(InferenceEngine):
    name: ClassVar[str] = "onnxruntime"

    def __init__(self, model_path: Path, manifest: ModelManifest, config: OnnxRuntimeBackendConfig) -> None:
        """Create the session and run one warm-up inference.

        The first run of a session allocates its arena and picks kernels; doing it here keeps that
        cost out of the first window's latency.
        """
        super().__init__(model_path, manifest)
        if ort is None:
            raise BackendUnavailableError(f"onnxruntime is not installed ({ORT_IMPORT_ERROR})")
        provider = _PROVIDERS[config.device]
        if provider not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"ONNX Runtime here has no {provider} (available: {', '.join(ort.get_available_providers())})"
            )
        self._device = config.device
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = config.memory_arena
        try:
            self._session: Any = ort.InferenceSession(str(model_path), options, providers=[provider])
        except Exception as exc:  # onnxruntime raises its own hierarchy for corrupt graphs
            raise ModelError(f"ONNX Runtime cannot load {model_path}: {exc}") from exc
        self._input = manifest.input.name
        self._output = manifest.output.name
        names = [i.name for i in self._session.get_inputs()]
        if self._input not in names:
            raise ModelError(f"{model_path}: manifest input {self._input!r} is not among the model's {names}")
        self.warm_up()

    @property
    def label(self) -> str:
        return f"{self.name}-{self._device}"

    def run(self, feeds: dict[str, npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        return [np.asarray(o) for o in self._session.run(None, feeds)]

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = self._session.run([self._output], {self._input: batch})[0]
        return np.asarray(out, dtype=np.float32)
