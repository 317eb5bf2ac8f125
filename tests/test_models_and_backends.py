"""Model files are checked before loading; backends fall back in the configured order."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from contract.files import sha256_file
from edge.config import load_config
from edge.config.models import OnnxRuntimeBackendConfig, TensorRTBackendConfig
from edge.errors import BackendUnavailableError, ModelError
from edge.inference import create_engine, load_manifest
from edge.runtime import Appliance
from tests.conftest import CONSENT, PACK_KEY, Broker, collect, write_config


@pytest.fixture
def model_copy(face_model: Path, tmp_path: Path) -> Path:
    dst = tmp_path / face_model.name
    shutil.copy(face_model, dst)
    shutil.copy(face_model.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


@pytest.mark.unit
def test_missing_model_names_the_file_and_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found: .*nope\.onnx; build it with `clinic-export fer-face"):
        load_manifest(tmp_path / "nope.onnx")


@pytest.mark.unit
def test_missing_manifest(model_copy: Path) -> None:
    model_copy.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match=r"model manifest not found: .*face-fer-minixception\.json"):
        load_manifest(model_copy)


@pytest.mark.unit
def test_truncated_model_is_caught_by_its_hash(model_copy: Path) -> None:
    data = model_copy.read_bytes()
    model_copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"is corrupt or was replaced: sha256 .* does not match its manifest"):
        load_manifest(model_copy)


@pytest.mark.unit
def test_corrupt_model_with_matching_manifest_is_refused_cleanly(model_copy: Path) -> None:
    model_copy.write_bytes(b"\x08\x07garbage" * 100)
    meta = json.loads(model_copy.with_suffix(".json").read_text())
    meta["sha256"] = sha256_file(model_copy)
    model_copy.with_suffix(".json").write_text(json.dumps(meta))
    manifest = load_manifest(model_copy)
    with pytest.raises(ModelError, match=r"ONNX Runtime cannot load .*face-fer-minixception\.onnx"):
        create_engine(model_copy, manifest, [OnnxRuntimeBackendConfig()])


@pytest.mark.unit
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m.update(label_map={**m["label_map"], "fear": {"scared": 1.0}}),
            r"label_map target 'scared'",
        ),
        (lambda m: m.pop("output"), r"invalid at output"),
        (lambda m: m.update(manifest_version=7), r"invalid at manifest_version"),
    ],
)
def test_invalid_manifest(model_copy: Path, edit: object, message: str) -> None:
    meta = json.loads(model_copy.with_suffix(".json").read_text())
    edit(meta)  # type: ignore[operator]
    model_copy.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=message):
        load_manifest(model_copy)


@pytest.mark.unit
def test_unreadable_manifest(model_copy: Path) -> None:
    model_copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match=r"is unreadable"):
        load_manifest(model_copy)


@pytest.mark.unit
def test_tensorrt_falls_back_to_onnxruntime_and_says_so(
    face_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = load_manifest(face_model)
    chain = [TensorRTBackendConfig(engine_dir=tmp_path), OnnxRuntimeBackendConfig()]
    with caplog.at_level(logging.INFO):
        engine = create_engine(face_model, manifest, chain)
    assert engine.label == "onnxruntime-cpu"
    assert any(
        "backend tensorrt unavailable" in r.getMessage() and "falling back to onnxruntime" in r.getMessage()
        for r in caplog.records
    )
    out = engine.infer(np.zeros((3, 1, 64, 64), dtype=np.float32))
    assert out.shape == (3, 7)
    assert engine.degraded and engine.requested == "tensorrt"
    assert engine.fallback_reason is not None and engine.fallback_reason.startswith("tensorrt: ")
    assert any(
        r.getMessage().startswith("DEGRADED: model face-fer-minixception was asked to run on tensorrt")
        for r in caplog.records
    )


def test_a_room_that_asked_for_tensorrt_and_got_the_cpu_says_so_everywhere(
    face_model: Path, tmp_path: Path, broker: Broker
) -> None:
    """At start (log), in the retained status and in the metrics: a degraded state, never a silent one."""
    extra = f'[[inference.backends]]\nbackend = "tensorrt"\nengine_dir = "{tmp_path}"\n'
    extra += '[[inference.backends]]\nbackend = "onnxruntime"\n'
    cfg = write_config(
        tmp_path / "room.toml", face_model=face_model, state_dir=tmp_path / "s", mqtt_port=broker.port, extra=extra
    )
    status = collect(broker.host, broker.port, "clinic/v1/+/+/status")
    try:
        appliance = Appliance(load_config(cfg), "test:")
        appliance.run(consent=CONSENT, duration_s=1.0)
        metrics_text = generate_latest(appliance.metrics.registry).decode()
        got = status.wait_for("status", 1)
    finally:
        status.close()
    assert got and all(s["degraded"] == ["inference"] for s in got if s["state"] == "online")
    assert any(s["state"] == "online" for s in got)
    assert (
        'clinic_edge_inference_backend{backend="onnxruntime-cpu",degraded="yes",model="face-fer-minixception",'
        'requested="tensorrt"} 1.0'
    ) in metrics_text
    assert 'clinic_edge_degraded{reason="inference"} 1.0' in metrics_text
    assert appliance.fallbacks and appliance.fallbacks[0].startswith(
        "face-fer-minixception: tensorrt -> onnxruntime-cpu"
    )


@pytest.mark.unit
def test_tensorrt_alone_gives_a_clear_error_without_it(face_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("edge.inference.tensorrt_backend")
    from edge.inference import tensorrt_backend

    if tensorrt_backend.trt is not None:
        pytest.skip("TensorRT is installed here; this checks the message on machines without it")
    manifest = load_manifest(face_model)
    with pytest.raises(BackendUnavailableError, match=r"TensorRT is not installed"):
        create_engine(face_model, manifest, [TensorRTBackendConfig(engine_dir=tmp_path)])


@pytest.mark.unit
def test_onnxruntime_cuda_without_a_gpu_build(face_model: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    manifest = load_manifest(face_model)
    with pytest.raises(
        BackendUnavailableError, match=r"has no CUDAExecutionProvider \(available: .*CPUExecutionProvider"
    ):
        create_engine(face_model, manifest, [OnnxRuntimeBackendConfig(device="cuda")])


@pytest.mark.gpu
def test_tensorrt_engine_matches_onnxruntime(face_model: Path, tmp_path: Path) -> None:
    """On a device with TensorRT, an engine built by `clinic-export engine` agrees with ONNX Runtime."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (no NVIDIA GPU here)")
    from export.tensorrt_build import build_engine, plan_from_manifest

    engine_dir = tmp_path / "engines"
    build_engine(plan_from_manifest(face_model, engine_dir / f"{face_model.stem}.engine"))
    manifest = load_manifest(face_model)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 64, 64)).astype(np.float32)
    ref = create_engine(face_model, manifest, [OnnxRuntimeBackendConfig()]).infer(x)
    got = create_engine(face_model, manifest, [TensorRTBackendConfig(engine_dir=engine_dir)]).infer(x)
    assert np.abs(got - ref).max() < 1e-2
    assert (got.argmax(1) == ref.argmax(1)).all()


@pytest.mark.unit
def test_default_pack_carries_evidence_and_the_room_follows_it() -> None:
    """The pack scripts/setup.sh builds: every variant verified; the room loads exactly the accepted ones."""
    from edge.config.models import ModelsConfig
    from edge.inference.pack import face_model_path

    pack = Path(__file__).resolve().parents[1] / "build" / "models" / "pack"
    if not (pack / "pack.json").is_file():
        pytest.fail(f"{pack} is missing: run scripts/setup.sh (the README's test command does)")
    for precision in ("fp32", "int8", "fp16"):
        manifest_path = pack / "face-fer-minixception" / f"face-fer-minixception.{precision}.json"
        manifest = json.loads(manifest_path.read_text())
        assert manifest["verification"]["items"] == 80 and not manifest["verification"]["labelled"]
        config = ModelsConfig(pack=pack, precision=precision, trusted_keys=[PACK_KEY])
        if manifest["release"]["accepted"]:
            path = face_model_path(config)
            create_engine(path, load_manifest(path), [OnnxRuntimeBackendConfig()])
        else:
            with pytest.raises(ModelError, match="was refused at verification"):
                face_model_path(config)
    assert json.loads((pack / "face-fer-minixception" / "face-fer-minixception.fp32.json").read_text())["release"][
        "accepted"
    ]
