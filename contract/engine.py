"""The sidecar of a TensorRT engine, ``<model>.engine.json``.

``clinic-export engine`` writes it beside the plain engine file (so ``trtexec --loadEngine`` still
opens the engine); the room's TensorRT backend reads it and refuses an engine built from another
ONNX file than the manifest's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ShapeRange(_Loose):
    min: list[int]
    opt: list[int]
    max: list[int]


class EngineDevice(_Loose):
    """The GPU an engine was built on (an engine runs only on the same kind of device)."""

    name: str | None = None
    compute_capability: str | None = None
    cuda_runtime: str | None = None


class EngineSidecar(_Loose):
    engine: str
    onnx: str
    onnx_sha256: str
    precision: str
    strongly_typed: bool = True
    inputs: dict[str, ShapeRange]
    workspace_mib: int
    tensorrt: str
    device: EngineDevice | None = None
    host: str | None = None
    built: str | None = None
    build_seconds: float | None = None
    trtexec: list[str] | None = None


def sidecar_path(engine_path: Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    return engine_path.with_suffix(".engine.json")
