"""Every TensorRT and CUDA name the code uses exists in the real Python bindings, so the Jetson path
cannot fail on a misspelt or removed API before a device is at hand.

The names are read from the source with ``ast``: ``trt.X.Y`` and ``cudart.X.Y`` chains, and the
methods called on TensorRT's objects (the engine, its execution context, the builder, its network,
parser, config and profile). CUDA: cuda-python's runtime module is installed here (the dev extra;
it imports without a GPU) and each name is looked up on it. TensorRT: its Python bindings cannot be
imported without NVIDIA's libnvinfer, which PyPI does not carry; set-up keeps the bindings wheel of
JetPack 6's TensorRT (10.3) in build/wheels, and each name must be among the names that extension
module registers. With TensorRT importable (on a Jetson) each is looked up on the real classes.
"""

from __future__ import annotations

import ast
import importlib
import re
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCES = [
    ROOT / "edge" / "inference" / "tensorrt_backend.py",
    ROOT / "export" / "tensorrt_build.py",
    ROOT / "contract" / "tensorrt_log.py",
    ROOT / "contract" / "engine.py",
]
TRT_WHEEL = ROOT / "build" / "wheels" / "tensorrt_cu12_bindings-10.3.0-cp311-none-manylinux_2_17_x86_64.whl"
# Per source file: the variables that hold TensorRT objects, and the class each one is.
TRT_OBJECTS = {
    "tensorrt_backend.py": {
        "_engine": "ICudaEngine",
        "engine": "ICudaEngine",
        "_context": "IExecutionContext",
        "_runtime": "Runtime",
    },
    "tensorrt_build.py": {
        "builder": "Builder",
        "network": "INetworkDefinition",
        "parser": "OnnxParser",
        "config": "IBuilderConfig",
        "profile": "IOptimizationProfile",
    },
}


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"] (None for anything but names and attributes)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def used_names() -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """(trt.* chains, cudart.* chains, (TensorRT class, method) pairs) the sources use; only whole
    chains count (``trt.TensorIOMode.OUTPUT``, not also ``trt.TensorIOMode``)."""
    trt, cuda, methods = set(), set(), set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inner = {
            id(child) for parent in ast.walk(tree) if isinstance(parent, ast.Attribute) for child in [parent.value]
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or id(node) in inner:
                continue
            chain = _chain(node)
            if not chain or len(chain) < 2:
                continue
            dotted = ".".join(chain[1:])
            if chain[0] == "trt":
                trt.add(dotted)
            elif chain[0] == "cudart":
                cuda.add(dotted)
            else:
                objects = TRT_OBJECTS.get(path.name, {})
                owner = chain[-2]
                if owner in objects and chain[0] in ("self", owner):
                    methods.add((objects[owner], chain[-1]))
    return trt, cuda, methods


@pytest.fixture(scope="module")
def names() -> tuple[set[str], set[str], set[tuple[str, str]]]:
    return used_names()


@pytest.mark.unit
def test_the_sources_use_the_apis_this_test_knows(names: tuple[set[str], set[str], set[tuple[str, str]]]) -> None:
    """A guard on the reader itself: it finds the calls the Jetson path depends on."""
    trt, cuda, methods = names
    assert {"Runtime", "Builder", "OnnxParser", "TensorIOMode.OUTPUT", "MemoryPoolType.WORKSPACE"} <= trt
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaMemcpyKind.cudaMemcpyHostToDevice", "cudaGetDeviceProperties"} <= cuda
    assert {("IExecutionContext", "execute_async_v3"), ("ICudaEngine", "get_tensor_name")} <= methods


@pytest.mark.unit
def test_every_cuda_name_exists_in_cuda_python(names: tuple[set[str], set[str], set[tuple[str, str]]]) -> None:
    cudart = pytest.importorskip(
        "cuda.bindings.runtime", reason="cuda-python is not installed (the dev extra installs it)"
    )
    missing = []
    for dotted in sorted(names[1]):
        node: object = cudart
        for part in dotted.split("."):
            if not hasattr(node, part):
                missing.append(dotted)
                break
            node = getattr(node, part)
    assert missing == []
    err, _count = cudart.cudaGetDeviceCount()  # the real module answers without a GPU: no driver here
    assert int(err) != 0


def _bindings_text() -> bytes:
    """TensorRT's bindings as shipped: the extension module (pybind11 keeps every registered name as a
    C string; the linker may share a short one with the tail of a longer one) and its Python part."""
    if not TRT_WHEEL.is_file():
        pytest.fail(f"{TRT_WHEEL} is missing: run scripts/setup.sh (it keeps TensorRT's bindings wheel)")
    with zipfile.ZipFile(TRT_WHEEL) as wheel:
        return b"\0".join(wheel.read(n) for n in wheel.namelist() if n.endswith((".so", ".py")))


def _missing(names: set[str], text: bytes) -> list[str]:
    return sorted(n for n in names if re.search(re.escape(n.encode()) + rb"(?![A-Za-z0-9_])", text) is None)


@pytest.mark.unit
def test_every_tensorrt_name_exists_in_tensorrt(names: tuple[set[str], set[str], set[tuple[str, str]]]) -> None:
    trt_names, _, methods = names
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        wanted = {p for dotted in trt_names if not dotted.startswith("__version__") for p in dotted.split(".")}
        wanted |= {method for _cls, method in methods} | {cls for cls, _method in methods}
        assert _missing(wanted, _bindings_text()) == []
        return
    missing = [d for d in sorted(trt_names) if not _has(trt, d)]
    missing += [f"{cls}.{m}" for cls, m in sorted(methods) if not hasattr(getattr(trt, cls), m)]
    assert missing == []


def _has(module: object, dotted: str) -> bool:
    node = module
    for part in dotted.split("."):
        if not hasattr(node, part):
            return False
        node = getattr(node, part)
    return True


@pytest.mark.unit
def test_a_misspelt_name_would_be_caught() -> None:
    """The registered-name check can fail: a name TensorRT 10 removed is not there."""
    text = _bindings_text()
    assert _missing({"execute_async_v3", "deserialize_cuda_engine", "nptype"}, text) == []
    assert _missing({"execute_async_v2", "get_binding_shape"}, text) == ["execute_async_v2", "get_binding_shape"]
    assert Path(TRT_WHEEL).name.startswith("tensorrt_cu12_bindings-10.3.0")
