"""``clinic-export engine``: a TensorRT engine from a pack's Q/DQ INT8, FP16 or FP32 ONNX variant.

The network is built *strongly typed*: precisions come from the graph itself (the Q/DQ nodes of the
INT8 variant, the half tensors of the FP16 one), never from builder flags, which is the path
TensorRT 10 recommends and TensorRT 11 requires. One optimisation profile covers batch 1 to
``max_batch``; a timing cache beside the engine makes rebuilds fast; the workspace is capped.

Output: ``<out>.engine`` (plain, so ``trtexec --loadEngine`` opens it), ``<out>.engine.json`` (ONNX
sha256, precision, shapes, TensorRT and CUDA versions, device and compute capability, build time)
and ``<out>.trtexec.sh``, the ``trtexec`` command that builds the same engine.
"""

from __future__ import annotations

import logging
import platform
import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from contract.engine import EngineDevice, EngineSidecar, ShapeRange, device_of, sidecar_path
from contract.files import sha256_file
from contract.manifest import ModelManifest, manifest_path, weights_path
from contract.tensorrt_log import tensorrt_logger
from export.errors import ExportError
from export.manifest import write_model

try:
    import tensorrt as trt

    TRT_IMPORT_ERROR: str | None = None
except ImportError as _exc:
    trt = None
    TRT_IMPORT_ERROR = str(_exc)

logger = logging.getLogger(__name__)

TENSORRT_HINT = (
    "TensorRT's Python package is needed to build engines: on a Jetson it comes with JetPack "
    "(apt install python3-libnvinfer); on an x86 GPU machine, pip install tensorrt. Without it, run "
    "the trtexec command this tool writes beside the engine on the device instead."
)


@dataclass(frozen=True)
class EnginePlan:
    """What to build: one ONNX variant, its manifest's shapes and the builder limits."""

    onnx: Path
    out: Path  # the .engine path
    precision: str
    inputs: dict[str, list[int | None]]  # name -> shape with None for the batch axis
    max_batch: int = 8
    opt_batch: int = 1
    workspace_mib: int = 1024

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.out)

    @property
    def timing_cache(self) -> Path:
        return self.out.with_suffix(".timing.cache")

    def shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        return {name: tuple(batch if d is None else d for d in shape) for name, shape in self.inputs.items()}


def plan_from_manifest(onnx_path: Path, out: Path, *, max_batch: int = 8, workspace_mib: int = 1024) -> EnginePlan:
    """Read the variant's manifest (``<model>.<precision>.json``) for its precision and input shapes."""
    path = manifest_path(onnx_path)
    try:
        manifest = ModelManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"manifest {path} of {onnx_path} is missing or invalid: {exc}") from None
    if manifest.sha256 != sha256_file(onnx_path):
        raise ExportError(f"{onnx_path} does not match its manifest's sha256; rebuild the pack")
    weights = weights_path(onnx_path)
    if manifest.weights_sha256 is not None and (
        not weights.is_file() or sha256_file(weights) != manifest.weights_sha256
    ):
        raise ExportError(f"{weights} is missing or does not match its manifest's weights_sha256; rebuild the pack")
    inputs = {manifest.input.name: manifest.input.shape}
    inputs.update({i.name: i.shape for i in manifest.extra_inputs})
    return EnginePlan(onnx_path, out, manifest.precision, inputs, max_batch=max_batch, workspace_mib=workspace_mib)


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_command(plan: EnginePlan) -> list[str]:
    """The ``trtexec`` invocation that builds the same engine (TensorRT 10)."""

    def shapes(batch: int) -> str:
        return ",".join(f"{name}:{_dims(shape)}" for name, shape in plan.shapes(batch).items())

    return [
        "trtexec",
        f"--onnx={plan.onnx}",
        f"--saveEngine={plan.out}",
        "--stronglyTyped",
        f"--minShapes={shapes(1)}",
        f"--optShapes={shapes(plan.opt_batch)}",
        f"--maxShapes={shapes(plan.max_batch)}",
        f"--memPoolSize=workspace:{plan.workspace_mib}M",
        f"--timingCacheFile={plan.timing_cache}",
        "--skipInference",
    ]


def write_trtexec_script(plan: EnginePlan) -> Path:
    path = plan.out.with_suffix(".trtexec.sh")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n# Builds the same engine as `clinic-export engine`; run it on the target device.\n"
        f"exec {shlex.join(trtexec_command(plan))}\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def _strongly_typed_network(builder: Any) -> Any:
    """A network whose precisions come from the graph. TensorRT-version differences live here only."""
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    major = int(trt.__version__.split(".", 1)[0])
    if major < 10:
        # TensorRT 8.x/9.x need the explicit-batch flag (implied from 10 on) and lack strong typing
        # before 9.1; their implicit-precision path would silently change the Q/DQ graph's meaning.
        raise ExportError(f"TensorRT {trt.__version__} is too old: strongly typed networks need TensorRT 10 or later")
    return builder.create_network(flags)


def _device() -> EngineDevice:
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:
        return EngineDevice()
    return device_of(cudart)


def engine_sidecar(plan: EnginePlan, *, tensorrt: str, device: EngineDevice, seconds: float) -> EngineSidecar:
    """The sidecar of ``plan``'s engine (written before this: its hash is in it), built with TensorRT
    ``tensorrt`` on ``device`` in ``seconds``."""
    return EngineSidecar(
        engine=plan.out.name,
        engine_sha256=sha256_file(plan.out) if plan.out.is_file() else None,
        onnx=str(plan.onnx),
        onnx_sha256=sha256_file(plan.onnx),
        weights_sha256=sha256_file(weights_path(plan.onnx)) if weights_path(plan.onnx).is_file() else None,
        precision=plan.precision,
        strongly_typed=True,
        inputs={
            name: ShapeRange(
                min=list(plan.shapes(1)[name]),
                opt=list(plan.shapes(plan.opt_batch)[name]),
                max=list(plan.shapes(plan.max_batch)[name]),
            )
            for name in plan.inputs
        },
        workspace_mib=plan.workspace_mib,
        tensorrt=tensorrt,
        device=device,
        host=platform.machine(),
        built=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 1),
        trtexec=trtexec_command(plan),
    )


def build_engine(plan: EnginePlan) -> Path:
    """Build ``plan.out`` and its sidecar; also writes the trtexec script.

    Raises:
        ExportError: TensorRT is missing (the message says what to install), the ONNX parser
            rejects the graph, or the builder returns no engine.
    """
    script = write_trtexec_script(plan)
    if trt is None:
        raise ExportError(
            f"cannot build {plan.out}: {TENSORRT_HINT} (import error: {TRT_IMPORT_ERROR}); wrote {script}"
        )
    started = time.monotonic()
    trt_logger = tensorrt_logger(trt)
    builder = trt.Builder(trt_logger)
    network = _strongly_typed_network(builder)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(plan.onnx.read_bytes(), str(plan.onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT's ONNX parser rejected {plan.onnx}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    cache_bytes = plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    for name in plan.inputs:
        profile.set_shape(
            name, plan.shapes(1)[name], plan.shapes(plan.opt_batch)[name], plan.shapes(plan.max_batch)[name]
        )
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {plan.onnx} (see the tensorrt log above)")
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    plan.out.write_bytes(bytes(serialized))
    plan.timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    meta = engine_sidecar(plan, tensorrt=trt.__version__, device=_device(), seconds=time.monotonic() - started)
    write_model(plan.sidecar, meta)
    logger.info("engine %s (%s) built in %.1f s", plan.out, plan.precision, meta.build_seconds)
    return plan.out
