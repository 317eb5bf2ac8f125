"""Numerical checks of converted models against their reference implementation."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from export.errors import VerificationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Agreement:
    """How closely two implementations agree on the same inputs."""

    samples: int
    max_abs_error: float
    top1_agreement: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def compare(reference: npt.NDArray[np.float32], candidate: npt.NDArray[np.float32]) -> Agreement:
    """Compare two ``(N, C)`` probability arrays."""
    if reference.shape != candidate.shape:
        raise VerificationError(f"output shapes differ: reference {reference.shape}, candidate {candidate.shape}")
    return Agreement(
        samples=int(reference.shape[0]),
        max_abs_error=float(np.max(np.abs(reference - candidate))),
        top1_agreement=float(np.mean(reference.argmax(1) == candidate.argmax(1))),
    )


def keras_reference(h5_path: Path, batch_nhwc: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Run the original Keras model from its HDF5 file (Keras 3 on its PyTorch backend).

    Keras' own layer implementations are the reference: they interpret the file exactly as it was
    trained, independently of our PyTorch re-creation.
    """
    os.environ["KERAS_BACKEND"] = "torch"  # must be set before the first keras import
    import keras  # noqa: PLC0415

    if keras.backend.backend() != "torch":
        raise VerificationError(
            f"keras was already imported with the {keras.backend.backend()!r} backend; run the check in a fresh process"
        )
    model = keras.models.load_model(str(h5_path), compile=False)
    return np.asarray(model.predict(batch_nhwc, verbose=0), dtype=np.float32)


def torch_predict(model: nn.Module, batch_nchw: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    with torch.no_grad():
        out: npt.NDArray[np.float32] = model(torch.from_numpy(np.ascontiguousarray(batch_nchw))).numpy()
    return out.astype(np.float32)


def onnx_predict(path: Path, input_name: str, batch_nchw: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import onnxruntime as ort  # noqa: PLC0415

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: npt.NDArray[np.float32] = np.asarray(
        session.run(None, {input_name: np.ascontiguousarray(batch_nchw)})[0], dtype=np.float32
    )
    return out


def lfw_faces(size: int = 64) -> npt.NDArray[np.float32]:
    """The 100 real face photographs of scikit-image's LFW subset, ``(100, 1, size, size)`` in [-1, 1].

    Raises:
        VerificationError: scikit-image is not installed.
    """
    try:
        from skimage import data  # noqa: PLC0415
        from skimage.transform import resize  # noqa: PLC0415
    except ImportError:
        raise VerificationError(
            "scikit-image is needed for its LFW face photographs (pip install scikit-image)"
        ) from None
    faces = data.lfw_subset()[:100]  # type: ignore[no-untyped-call]  # grey faces in [0, 1]
    big = np.stack([resize(f, (size, size), anti_aliasing=True) for f in faces]).astype(np.float32)  # type: ignore[no-untyped-call]
    out: npt.NDArray[np.float32] = (big * 2.0 - 1.0)[:, None]
    return out


def face_inputs(random_count: int = 64, seed: int = 0) -> npt.NDArray[np.float32]:
    """Test inputs for a 64x64 grey face model, in [-1, 1], NCHW.

    Random images plus the real face photographs of scikit-image's LFW subset (when installed),
    resized to 64x64.
    """
    rng = np.random.default_rng(seed)
    batches = [rng.uniform(-1.0, 1.0, size=(random_count, 1, 64, 64)).astype(np.float32)]
    try:
        from skimage import data  # noqa: PLC0415
        from skimage.transform import resize  # noqa: PLC0415
    except ImportError:
        logger.warning("scikit-image is not installed; verifying on random inputs only")
    else:
        faces = data.lfw_subset()[:100]  # type: ignore[no-untyped-call]  # grey faces in [0, 1]
        big = np.stack([resize(f, (64, 64), anti_aliasing=True) for f in faces]).astype(np.float32)  # type: ignore[no-untyped-call]
        batches.append((big * 2.0 - 1.0)[:, None])
    return np.concatenate(batches)
