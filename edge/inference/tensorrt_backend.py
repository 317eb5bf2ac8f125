"""TensorRT backend for Jetson and other NVIDIA devices (TensorRT 10 tensor API).

The engine for ``<model>.onnx`` is ``<engine_dir>/<model>.engine`` with a ``<model>.engine.json``
sidecar naming the ONNX hash it was built from, so an engine can never silently run a model other
than the manifest's. Device memory and the stream come from CUDA's runtime API (``cuda-python``).
``tensorrt`` and ``cuda`` are imported here only, and only when this backend is asked for.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from contract.engine import EngineDevice, EngineSidecar, device_of, incompatibilities, sidecar_path
from contract.files import sha256_file
from contract.manifest import ModelManifest
from contract.tensorrt_log import tensorrt_logger
from edge.config.models import TensorRTBackendConfig
from edge.errors import BackendUnavailableError, ModelError
from edge.inference.base import InferenceEngine

try:
    import tensorrt as trt

    TRT_IMPORT_ERROR: str | None = None
except ImportError as _exc:
    trt = None
    TRT_IMPORT_ERROR = str(_exc)

try:
    from cuda.bindings import runtime as cudart  # type: ignore[import-not-found, unused-ignore]

    CUDA_IMPORT_ERROR: str | None = None
except ImportError as _exc:
    cudart = None
    CUDA_IMPORT_ERROR = str(_exc)

logger = logging.getLogger(__name__)


def _check(result: Any, what: str) -> Any:
    """cuda-python returns (err, *values); raise on any error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise ModelError(f"CUDA {what} failed with error {int(err)}")
    return values[0] if len(values) == 1 else values


def profile_max_batch(engine: Any, name: str) -> int:
    """The largest batch ``engine`` takes for input ``name``: its fixed batch, or the batch of the
    largest shape of its first optimisation profile (``clinic-export engine --max-batch``)."""
    shape = tuple(engine.get_tensor_shape(name))
    if shape and int(shape[0]) >= 0:
        return int(shape[0])
    _, _, largest = engine.get_tensor_profile_shape(name, 0)  # (min, opt, max) shapes
    return int(largest[0])


def trusted_sidecar(sidecar: Path, euid: int) -> None:
    """A room that runs as its own user trusts an engine's sidecar only when root owns it and no one
    else may write it: the room (or whoever took its user over) cannot then swap engine and sidecar.

    Raises:
        ModelError: naming the file, its owner and mode, and the command that fixes it.
    """
    if euid == 0:
        return  # root may write anything; nothing to gain from the check
    try:
        st = sidecar.stat()
    except OSError as exc:
        raise ModelError(f"engine metadata {sidecar} is missing or unreadable: {exc}") from None
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise ModelError(
            f"engine metadata {sidecar} must be owned by root and writable by root only (owner uid {st.st_uid}, "
            f"mode {stat.S_IMODE(st.st_mode):o}): `sudo chown root: {sidecar} && sudo chmod 644 {sidecar}`"
        )


class TensorRTEngine(InferenceEngine):
    name: ClassVar[str] = "tensorrt"

    def __init__(self, model_path: Path, manifest: ModelManifest, config: TensorRTBackendConfig) -> None:
        """Deserialise the engine, allocate I/O buffers for batch 1 and run one warm-up inference.

        The warm-up makes TensorRT pick its tactics' runtime state and CUDA load its kernels before
        the first real window.
        """
        super().__init__(model_path, manifest)
        if trt is None:
            raise BackendUnavailableError(f"TensorRT is not installed ({TRT_IMPORT_ERROR})")
        if cudart is None:
            raise BackendUnavailableError(f"cuda-python is not installed ({CUDA_IMPORT_ERROR})")
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count == 0:
            raise BackendUnavailableError("no CUDA device is present")
        engine_path = config.engine_dir / f"{model_path.stem}.engine"
        self._check_sidecar(engine_path, manifest, trt.__version__, device_of(cudart))
        self._runtime = trt.Runtime(tensorrt_logger(trt))
        engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            raise ModelError(
                f"TensorRT could not deserialise {engine_path}; it was built for another TensorRT version "
                "or device. Rebuild it on this device."
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        # One execution context and stream: the analysis thread and the explanations share them.
        self._lock = threading.Lock()
        self._stream = _check(cudart.cudaStreamCreate(), "stream creation")
        self._input = manifest.input.name
        self._output = manifest.output.name
        self.max_batch = profile_max_batch(engine, self._input)  # larger batches go in runs (infer_many)
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._trt_version = trt.__version__
        self.warm_up()

    @staticmethod
    def _check_sidecar(
        engine_path: Path, manifest: ModelManifest, tensorrt: str, device: EngineDevice, euid: int | None = None
    ) -> None:
        """The engine exists, its bytes are the ones its root-owned sidecar hashed, it was built from
        the manifest's ONNX file, with this TensorRT release and on this kind of GPU; one built
        elsewhere leaves the model to the next backend (degraded)."""
        if not engine_path.is_file():
            raise BackendUnavailableError(f"no TensorRT engine at {engine_path}; build one on this device")
        sidecar = sidecar_path(engine_path)
        trusted_sidecar(sidecar, os.geteuid() if euid is None else euid)
        try:
            meta = EngineSidecar.model_validate_json(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"engine metadata {sidecar} is missing or unreadable: {exc}") from None
        if meta.engine_sha256 is None:
            raise ModelError(
                f"engine metadata {sidecar} holds no hash of the engine; rebuild it (clinic-export engine)"
            )
        if sha256_file(engine_path) != meta.engine_sha256:
            raise ModelError(
                f"engine {engine_path} is not the one {sidecar} describes (its bytes changed); rebuild it "
                "(clinic-export engine)"
            )
        if meta.onnx_sha256 != manifest.sha256:
            raise ModelError(
                f"engine {engine_path} was built from another ONNX file (sha256 {meta.onnx_sha256!r}, "
                f"manifest says {manifest.sha256!r}); rebuild it"
            )
        if meta.weights_sha256 != manifest.weights_sha256:
            raise ModelError(
                f"engine {engine_path} was built from other weights (sha256 {meta.weights_sha256!r}, manifest "
                f"says {manifest.weights_sha256!r}); rebuild it"
            )
        problems = incompatibilities(meta, tensorrt, device)
        if problems:
            raise BackendUnavailableError(
                f"engine {engine_path} cannot run here: {'; '.join(problems)}; rebuild it on this device "
                "(clinic-export engine, docs/jetson.md)"
            )

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(cudart.cudaFree(ptr), "free")
            ptr = _check(cudart.cudaMalloc(nbytes), "malloc")
            self._buffers[name] = (ptr, nbytes)
            self._context.set_tensor_address(name, ptr)
        return int(ptr)

    def run(self, feeds: dict[str, npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        with self._lock:
            return self._run(feeds)

    def _run(self, feeds: dict[str, npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        """Every output tensor, in the engine's order, for the named inputs."""
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        kept = []  # host arrays must outlive the asynchronous copies
        for name, array in feeds.items():
            host = np.ascontiguousarray(array, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
            if not self._context.set_input_shape(name, tuple(host.shape)):
                raise ModelError(f"TensorRT engine rejects input shape {host.shape} for {name!r}")
            ptr = self._buffer(name, host.nbytes)
            _check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, self._stream), "copy in")
            kept.append(host)
        results = []
        for name in outputs:
            out = np.empty(
                tuple(self._context.get_tensor_shape(name)), dtype=trt.nptype(self._engine.get_tensor_dtype(name))
            )
            self._buffer(name, out.nbytes)
            results.append(out)
        if not self._context.execute_async_v3(self._stream):
            raise ModelError("TensorRT execution failed")
        for name, out in zip(outputs, results, strict=True):
            ptr, _ = self._buffers[name]
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, d2h, self._stream), "copy out")
        _check(cudart.cudaStreamSynchronize(self._stream), "synchronize")
        return results

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        result = self.run({self._input: batch})[outputs.index(self._output)]
        return np.asarray(result, dtype=np.float32)

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            cudart.cudaFree(ptr)
        self._buffers.clear()
        cudart.cudaStreamDestroy(self._stream)
