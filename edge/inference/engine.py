"""The backend table and the fallback chain: the first configured backend that loads a model runs it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from contract.manifest import ModelManifest
from edge.config.models import OnnxRuntimeBackendConfig, TensorRTBackendConfig
from edge.errors import BackendUnavailableError, ModelError
from edge.inference.base import InferenceEngine

logger = logging.getLogger(__name__)

BackendConfig = OnnxRuntimeBackendConfig | TensorRTBackendConfig


def _onnxruntime(config: BackendConfig, model_path: Path, manifest: ModelManifest) -> InferenceEngine:
    from edge.inference.onnxruntime_backend import OnnxRuntimeEngine  # noqa: PLC0415 - on demand

    if not isinstance(config, OnnxRuntimeBackendConfig):
        raise TypeError(f"expected an onnxruntime backend config, got {config.backend}")
    return OnnxRuntimeEngine(model_path, manifest, config)


def _tensorrt(config: BackendConfig, model_path: Path, manifest: ModelManifest) -> InferenceEngine:
    from edge.inference.tensorrt_backend import TensorRTEngine  # noqa: PLC0415 - TensorRT only where asked for

    if not isinstance(config, TensorRTBackendConfig):
        raise TypeError(f"expected a tensorrt backend config, got {config.backend}")
    return TensorRTEngine(model_path, manifest, config)


# Explicit table rather than an import scan: each backend is named here and imported only on demand.
BACKENDS: dict[str, Callable[[BackendConfig, Path, ModelManifest], InferenceEngine]] = {
    "onnxruntime": _onnxruntime,
    "tensorrt": _tensorrt,
}


def _make(config: BackendConfig, model_path: Path, manifest: ModelManifest) -> InferenceEngine:
    return BACKENDS[config.backend](config, model_path, manifest)


def create_engine(model_path: Path, manifest: ModelManifest, chain: Sequence[BackendConfig]) -> InferenceEngine:
    """Walk the configured backends in order; return the first that loads.

    Raises:
        BackendUnavailableError: no backend in the chain could load the model (each reason is named).
        ModelError: the model file itself is unusable.
    """
    reasons: list[str] = []
    for i, config in enumerate(chain):
        try:
            engine = _make(config, model_path, manifest)
        except BackendUnavailableError as exc:
            reasons.append(f"{config.backend}: {exc}")
            if i + 1 < len(chain):
                logger.warning(
                    "backend %s unavailable (%s); falling back to %s",
                    config.backend,
                    exc,
                    chain[i + 1].backend,
                )
            continue
        engine.requested = chain[0].backend
        if reasons:
            engine.fallback_reason = reasons[0]
            logger.warning(
                "DEGRADED: model %s was asked to run on %s but runs on %s (%s)",
                manifest.name,
                chain[0].backend,
                engine.label,
                reasons[0],
            )
        else:
            logger.info("model %s runs on %s", manifest.name, engine.label)
        return engine
    if len(reasons) == 1:
        raise BackendUnavailableError(reasons[0])
    raise BackendUnavailableError("no inference backend could load the model: " + "; ".join(reasons))


__all__ = ["BackendConfig", "InferenceEngine", "ModelError", "create_engine"]
