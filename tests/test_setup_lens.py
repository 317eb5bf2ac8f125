"""The setup page's lens calibration: checkerboard views collected from the preview's pictures give
the lens the room straightens its frames with (the pictures themselves are generated through a known
wide lens, as in tests/test_intrinsics.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.capture.source import parse_source
from edge.config import load_config
from edge.config.profile import FULL_FRAME
from edge.setup.preview import Preview
from edge.vision.detect import FaceDetector
from edge.vision.skin import SkinSampler
from tests.conftest import write_config
from tests.test_intrinsics import PATTERN, K, _views


@pytest.mark.unit
def test_checkerboard_views_from_the_preview_give_the_lens(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path / "room.toml", face_model=Path("f.onnx"), state_dir=tmp_path, mqtt_port=None)
    )
    preview = Preview(config, parse_source("test:"), FULL_FRAME)
    assert preview.lens() is None  # no checkerboard asked for
    preview.set_board(*PATTERN, 25.0)
    detector, mesh = FaceDetector("full", 0.5), SkinSampler()
    try:
        views = _views(24)
        for i, rgb in enumerate(views):
            preview._picture(rgb, detector, mesh)
            if i == 5:
                assert preview.lens() is None, "too few views yet"
    finally:
        detector.close()
        mesh.close()
    board = preview.as_json()["board"]
    assert board["pattern"] == "9x6" and board["views"] >= board["needed"]
    lens = preview.lens()
    assert lens is not None
    assert np.allclose(np.asarray(lens.camera_matrix)[0, 0], K[0, 0], rtol=0.05)
    assert preview.as_json()["board"]["views"] == 0, "the views are forgotten once solved"
