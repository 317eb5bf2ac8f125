"""The contract: every file the toolchain writes is read back by the same models, losing nothing.

The pack index, each variant's manifest and the single face model's manifest come from the real
toolchain (``scripts/setup.sh`` builds them); the engine sidecar is made by the engine builder's own
function and read by the room's TensorRT backend check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from contract.engine import EngineDevice, EngineSidecar, device_of, incompatibilities, sidecar_path
from contract.manifest import ModelManifest
from contract.pack import PackIndex
from edge.errors import BackendUnavailableError, ModelError
from edge.inference.manifest import load_manifest
from edge.inference.pack import open_pack
from edge.inference.tensorrt_backend import TensorRTEngine
from export.manifest import write_model
from export.tensorrt_build import engine_sidecar, plan_from_manifest


def _round_trip(path: Path, model: type[BaseModel]) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = model.model_validate_json(path.read_text(encoding="utf-8"))
    again = json.loads(parsed.model_dump_json(exclude_none=True))
    assert again == raw, f"{path} does not survive {model.__name__}: written and read by different code"


@pytest.mark.unit
def test_every_file_of_the_default_pack_round_trips(default_pack: Path) -> None:
    _round_trip(default_pack / "pack.json", PackIndex)
    index = open_pack(default_pack)
    manifests = [
        (default_pack / rel).with_suffix(".json") for m in index.models.values() for rel in m.variants.values()
    ]
    assert manifests, "the default pack lists no variants"
    for path in manifests:
        _round_trip(path, ModelManifest)


@pytest.mark.unit
def test_the_face_models_manifest_round_trips(face_model: Path) -> None:
    _round_trip(face_model.with_suffix(".json"), ModelManifest)
    assert load_manifest(face_model).name == "face-fer-minixception"


@pytest.mark.unit
def test_the_engine_sidecar_is_read_by_the_rooms_backend(default_pack: Path, tmp_path: Path) -> None:
    variant = default_pack / "face-fer-minixception" / "face-fer-minixception.int8.onnx"
    plan = plan_from_manifest(variant, tmp_path / "face.int8.engine", max_batch=4)
    orin = EngineDevice(name="Orin", compute_capability="8.7", cuda_runtime="12.6")
    plan.out.write_bytes(b"engine")
    meta = engine_sidecar(plan, tensorrt="10.3.0", device=orin, seconds=12.34)
    write_model(plan.sidecar, meta)
    _round_trip(plan.sidecar, EngineSidecar)
    assert plan.sidecar == sidecar_path(plan.out)
    read = EngineSidecar.model_validate_json(plan.sidecar.read_text())
    assert [r.max[0] for r in read.inputs.values()] == [4]
    manifest = load_manifest(variant)
    TensorRTEngine._check_sidecar(plan.out, manifest, "10.3.0.26", orin)  # the room accepts it
    other = manifest.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(ModelError, match="built from another ONNX file"):
        TensorRTEngine._check_sidecar(plan.out, other, "10.3.0", orin)
    reweighted = manifest.model_copy(update={"weights_file": "x.onnx.data", "weights_sha256": "1" * 64})
    with pytest.raises(ModelError, match="built from other weights"):
        TensorRTEngine._check_sidecar(plan.out, reweighted, "10.3.0", orin)
    with pytest.raises(BackendUnavailableError, match=r"built with TensorRT 10\.3\.0, this device has TensorRT 10\.7"):
        TensorRTEngine._check_sidecar(plan.out, manifest, "10.7.0", orin)
    # The engine's bytes are covered: another engine under the same sidecar is refused.
    plan.out.write_bytes(b"another engine")
    with pytest.raises(ModelError, match="its bytes changed"):
        TensorRTEngine._check_sidecar(plan.out, manifest, "10.3.0", orin)
    plan.out.write_bytes(b"engine")
    # A room running as its own user trusts only a sidecar root owns and alone may write.
    TensorRTEngine._check_sidecar(plan.out, manifest, "10.3.0", orin, euid=999)  # root-owned, 0644
    for owner, mode in ((999, 0o644), (0, 0o666), (0, 0o664)):
        os.chown(plan.sidecar, owner, -1)
        plan.sidecar.chmod(mode)
        with pytest.raises(ModelError, match="must be owned by root and writable by root only"):
            TensorRTEngine._check_sidecar(plan.out, manifest, "10.3.0", orin, euid=999)


ORIN = EngineDevice(name="Orin", compute_capability="8.7")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("built_with", "built_on", "here_trt", "here", "problems"),
    [
        ("10.3.0", ORIN, "10.3.0.30", ORIN, []),  # another build number of the same release
        ("10.3.0", ORIN, "10.3.1", ORIN, ["built with TensorRT 10.3.0, this device has TensorRT 10.3.1"]),
        (
            "10.3.0",
            ORIN,
            "10.3.0",
            EngineDevice(name="NVIDIA GeForce RTX 4090", compute_capability="8.9"),
            [
                "built for compute capability 8.7, this GPU has 8.9",
                "built on Orin, this GPU is NVIDIA GeForce RTX 4090",
            ],
        ),
        ("10.3.0", EngineDevice(), "10.3.0", ORIN, []),  # an old sidecar without the device: not held against it
        ("10.3.0", ORIN, "10.3.0", EngineDevice(), []),  # CUDA could not say
    ],
)
def test_an_engine_runs_only_with_its_tensorrt_release_and_gpu(
    built_with: str, built_on: EngineDevice, here_trt: str, here: EngineDevice, problems: list[str]
) -> None:
    sidecar = EngineSidecar(
        engine="m.engine",
        onnx="m.onnx",
        onnx_sha256="0" * 64,
        precision="int8",
        inputs={},
        workspace_mib=512,
        tensorrt=built_with,
        device=built_on,
    )
    assert incompatibilities(sidecar, here_trt, here) == problems


class _Props:
    name = b"Orin\x00\x00"
    major, minor = 8, 7


class _FakeRuntime:
    """cuda-python's answers on an Orin (the real module answers "no driver" here)."""

    @staticmethod
    def cudaGetDeviceProperties(_index: int) -> tuple[int, _Props]:  # noqa: N802 - CUDA's name
        return 0, _Props()

    @staticmethod
    def cudaRuntimeGetVersion() -> tuple[int, int]:  # noqa: N802 - CUDA's name
        return 0, 12060


@pytest.mark.unit
def test_the_device_is_read_from_cudas_runtime_api() -> None:
    assert device_of(_FakeRuntime()) == EngineDevice(name="Orin", compute_capability="8.7", cuda_runtime="12.6")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"pack_version": 2, "name": "p"}, "pack_version"),
        ({"name": "p", "models": {"m": {"role": "face"}}}, "architecture"),
        ({"name": "p", "files": {"a.onnx": 3}}, "files"),
    ],
)
def test_a_bad_pack_index_is_refused_with_the_field(body: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PackIndex.model_validate(body)
