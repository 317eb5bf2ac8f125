"""TensorRT engine building: the plan, the trtexec script, the clear error without TensorRT, and a
real build where a GPU and TensorRT are present."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from export.cli import EXIT_FAILED, main
from export.errors import ExportError
from export.tensorrt_build import TRT_IMPORT_ERROR, build_engine, plan_from_manifest, trtexec_command

PACK = Path(__file__).resolve().parents[1] / "build" / "models" / "pack"
VARIANT = PACK / "face-fer-minixception" / "face-fer-minixception.int8.onnx"


@pytest.fixture
def variant(tmp_path: Path) -> Path:
    if not VARIANT.is_file():
        pytest.fail(f"{VARIANT} is missing: run scripts/setup.sh (the README's test command does)")
    dst = tmp_path / VARIANT.name
    shutil.copy(VARIANT, dst)
    shutil.copy(VARIANT.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


@pytest.mark.unit
def test_plan_reads_precision_and_shapes_from_the_manifest(variant: Path, tmp_path: Path) -> None:
    plan = plan_from_manifest(variant, tmp_path / "e" / "face.int8.engine", max_batch=16)
    assert plan.precision == "int8"
    assert plan.shapes(1) == {"face": (1, 1, 64, 64)} and plan.shapes(16) == {"face": (16, 1, 64, 64)}
    assert plan.sidecar.name == "face.int8.engine.json" and plan.timing_cache.name == "face.int8.timing.cache"


@pytest.mark.unit
def test_trtexec_command_builds_the_same_strongly_typed_engine(variant: Path, tmp_path: Path) -> None:
    plan = plan_from_manifest(variant, tmp_path / "face.int8.engine", max_batch=8, workspace_mib=512)
    command = trtexec_command(plan)
    assert command[0] == "trtexec" and "--stronglyTyped" in command
    assert "--minShapes=face:1x1x64x64" in command and "--optShapes=face:1x1x64x64" in command
    assert "--maxShapes=face:8x1x64x64" in command and "--memPoolSize=workspace:512M" in command
    assert f"--saveEngine={tmp_path / 'face.int8.engine'}" in command
    assert not any(flag in command for flag in ("--int8", "--fp16"))  # precision comes from the graph


@pytest.mark.unit
def test_a_modified_variant_is_not_built(variant: Path, tmp_path: Path) -> None:
    variant.write_bytes(variant.read_bytes() + b"\x00")
    with pytest.raises(ExportError, match="does not match its manifest's sha256"):
        plan_from_manifest(variant, tmp_path / "x.engine")


@pytest.mark.unit
@pytest.mark.skipif(TRT_IMPORT_ERROR is None, reason="TensorRT is installed here; the missing-TensorRT path cannot run")
def test_without_tensorrt_the_engine_command_says_what_is_missing_and_writes_the_script(
    variant: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "face.int8.engine"
    assert main(["engine", "--onnx", str(variant), "--out", str(out)]) == EXIT_FAILED
    assert "TensorRT's Python package is needed to build engines" in caplog.text
    assert "python3-libnvinfer" in caplog.text
    script = out.with_suffix(".trtexec.sh")
    assert script.stat().st_mode & 0o111
    line = script.read_text().splitlines()[-1]
    assert shlex.split(line)[1:] == trtexec_command(plan_from_manifest(variant, out))
    assert not out.exists()


@pytest.mark.unit
def test_trtexec_only_writes_the_script(variant: Path, tmp_path: Path) -> None:
    out = tmp_path / "face.int8.engine"
    assert main(["engine", "--onnx", str(variant), "--out", str(out), "--trtexec-only"]) == 0
    assert out.with_suffix(".trtexec.sh").is_file() and not out.exists()


@pytest.mark.gpu
def test_engine_builds_and_its_sidecar_matches_the_runtime(variant: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (no GPU machine here)")
    out = tmp_path / "face-fer-minixception.int8.engine"
    build_engine(plan_from_manifest(variant, out))
    meta = json.loads(out.with_suffix(".engine.json").read_text())
    manifest = json.loads(variant.with_suffix(".json").read_text())
    assert meta["onnx_sha256"] == manifest["sha256"] and meta["precision"] == "int8" and meta["strongly_typed"]
    assert meta["device"]["compute_capability"] and meta["tensorrt"]
    assert out.stat().st_size > 0 and out.with_suffix(".timing.cache").is_file()
