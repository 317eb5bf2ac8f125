"""The sidecar of a TensorRT engine, ``<model>.engine.json``.

``clinic-export engine`` writes it beside the plain engine file (so ``trtexec --loadEngine`` still
opens the engine); the room's TensorRT backend reads it and refuses an engine built from another
ONNX file than the manifest's, with another TensorRT release or on another kind of GPU (a TensorRT
engine runs only where it was built: :func:`incompatibilities`), and an engine whose bytes are not
the ones the sidecar hashed. Engines are built on the device, where no signing key lives: the
sidecar is trusted because root owns it (the room, running as its own user, cannot rewrite it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    engine_sha256: str | None = None  # the engine file's own bytes (sidecars before it: None, refused)
    onnx: str
    onnx_sha256: str
    weights_sha256: str | None = None  # the ONNX file's external weights, where it has them
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


def device_of(cudart: Any, index: int = 0) -> EngineDevice:
    """The GPU ``index`` as CUDA's runtime API (cuda-python's ``cudart``, passed in: the contract
    imports no CUDA) describes it; empty fields where CUDA cannot say."""
    err, props = cudart.cudaGetDeviceProperties(index)
    runtime_err, runtime = cudart.cudaRuntimeGetVersion()
    known = int(err) == 0 and props is not None
    name = (props.name.decode() if isinstance(props.name, bytes) else str(props.name)) if known else ""
    return EngineDevice(
        name=name.rstrip("\x00") or None,
        compute_capability=f"{props.major}.{props.minor}" if known else None,
        cuda_runtime=f"{runtime // 1000}.{(runtime % 1000) // 10}" if int(runtime_err) == 0 and runtime else None,
    )


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:3])  # major.minor.patch: the build number may differ


def incompatibilities(sidecar: EngineSidecar, tensorrt: str, device: EngineDevice) -> list[str]:
    """Why an engine described by ``sidecar`` cannot run with TensorRT ``tensorrt`` on ``device``
    (empty: it can). TensorRT engines are specific to the TensorRT release and the GPU model they
    were built with; what the sidecar or the device does not say is not held against the engine."""
    problems = []
    if _release(sidecar.tensorrt) != _release(tensorrt):
        problems.append(f"built with TensorRT {sidecar.tensorrt}, this device has TensorRT {tensorrt}")
    built = sidecar.device or EngineDevice()
    if built.compute_capability and device.compute_capability and built.compute_capability != device.compute_capability:
        problems.append(
            f"built for compute capability {built.compute_capability}, this GPU has {device.compute_capability}"
        )
    if built.name and device.name and built.name != device.name:
        problems.append(f"built on {built.name}, this GPU is {device.name}")
    return problems
