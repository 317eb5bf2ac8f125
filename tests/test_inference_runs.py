"""Many items through one model in runs the engine takes (edge.inference.base.InferenceEngine.infer_many):
an explanation's 65 occluded faces, an utterance's speaker partials. Real ONNX Runtime sessions; the
run limit of a TensorRT engine (no GPU here) is stood in for by a wrapper that refuses larger
batches, as TensorRT's ``set_input_shape`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest
from skimage import data

from contract.classes import CLASSES
from edge.config.models import OnnxRuntimeBackendConfig
from edge.errors import ModelError
from edge.explain.maps import face_occlusion
from edge.inference import FaceExpressionModel, create_engine, load_manifest
from edge.inference.base import RUN_ITEMS, InferenceEngine
from edge.inference.tensorrt_backend import profile_max_batch
from edge.results import FaceCrop
from tests.faces import face_crop


class Limited(InferenceEngine):
    """A real engine behind the batch limit of an engine built for at most ``limit`` items; records
    every run's batch."""

    name: ClassVar[str] = "limited"

    def __init__(self, engine: InferenceEngine, limit: int | None) -> None:
        super().__init__(engine.model_path, engine.manifest)
        self._engine = engine
        self.max_batch = limit
        self.runs: list[int] = []

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self.max_batch is not None and batch.shape[0] > self.max_batch:
            raise ModelError(f"engine rejects input shape {batch.shape}")
        self.runs.append(batch.shape[0])
        return self._engine.infer(batch)

    def run(self, feeds: dict[str, npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        return self._engine.run(feeds)


@pytest.fixture(scope="module")
def engine(face_model: Path) -> InferenceEngine:
    return create_engine(face_model, load_manifest(face_model), [OnnxRuntimeBackendConfig()])


@pytest.fixture(scope="module")
def crop(engine: InferenceEngine) -> FaceCrop:
    return face_crop(data.astronaut(), FaceExpressionModel(engine).input_size)


@pytest.mark.unit
@pytest.mark.parametrize(("limit", "runs"), [(None, [8] * 8 + [1]), (4, [4] * 16 + [1]), (64, [8] * 8 + [1])])
def test_a_face_map_runs_its_variants_in_runs_the_engine_takes(
    engine: InferenceEngine, crop: FaceCrop, limit: int | None, runs: list[int]
) -> None:
    """The 8 x 8 map is 65 crops (the face and 64 occluded copies): in runs of at most RUN_ITEMS,
    fewer where the engine takes fewer, with the numbers of one run of all 65."""
    happy = CLASSES.index("happy")
    whole, whole_shares = face_occlusion(FaceExpressionModel(engine), crop, happy)
    limited = Limited(engine, limit)
    grid, shares = face_occlusion(FaceExpressionModel(limited), crop, happy)
    assert limited.runs == runs and max(runs) <= RUN_ITEMS
    np.testing.assert_allclose(grid, whole, atol=1e-5)
    assert shares == pytest.approx(whole_shares, abs=1e-3)


@pytest.mark.unit
def test_an_engine_without_runs_refuses_a_face_map(engine: InferenceEngine, crop: FaceCrop) -> None:
    """The wrapper does stand for a limited engine: one run of all 65 is refused."""
    limited = Limited(engine, 8)
    batch = np.repeat(crop.pixels[None, None].astype(np.float32), 65, axis=0)
    with pytest.raises(ModelError, match="rejects input shape"):
        limited.infer(batch)


class _Engine:
    """The two calls of TensorRT's ICudaEngine that tell an input's largest batch."""

    def __init__(self, shape: tuple[int, ...], profile_max: tuple[int, ...] | None) -> None:
        self.shape, self.profile_max = shape, profile_max

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        assert name == "face"
        return self.shape

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[Any]:
        assert (name, profile) == ("face", 0)
        if self.profile_max is None:
            raise RuntimeError("no profile for a fixed shape")
        return [(1, *self.shape[1:]), (1, *self.shape[1:]), self.profile_max]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("shape", "profile_max", "batch"),
    [
        ((-1, 1, 64, 64), (8, 1, 64, 64), 8),  # built by clinic-export engine at its default
        ((-1, 1, 64, 64), (16, 1, 64, 64), 16),  # --max-batch 16
        ((1, 1, 64, 64), None, 1),  # a fixed batch of one
    ],
)
def test_a_tensorrt_engines_largest_batch(
    shape: tuple[int, ...], profile_max: tuple[int, ...] | None, batch: int
) -> None:
    assert profile_max_batch(_Engine(shape, profile_max), "face") == batch
