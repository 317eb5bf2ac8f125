"""Fit the room's fusion temperature on labelled held-out windows (``clinic-export fit-temperature``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from clinic_signals.temperature import expected_calibration_error, fit_temperature, nll
from contract.classes import CLASSES
from contract.temperature import scaled
from export.errors import ExportError


def fit_fusion_temperature(heldout: Path, out: Path | None = None) -> dict[str, Any]:
    """Raises:
    ExportError: the file is unreadable, lacks ``probs``/``labels``, or names unknown classes."""
    try:
        with np.load(heldout, allow_pickle=False) as npz:
            probs = np.asarray(npz["probs"], dtype=np.float64)
            names = [str(n) for n in npz["labels"]]
    except (OSError, KeyError, ValueError) as exc:
        raise ExportError(f"held-out windows {heldout} are unusable (need probs and labels): {exc}") from None
    unknown = sorted(set(names) - set(CLASSES))
    if unknown:
        raise ExportError(f"{heldout}: unknown classes {unknown}; use {list(CLASSES)}")
    if probs.shape != (len(names), len(CLASSES)):
        raise ExportError(f"{heldout}: probs has shape {probs.shape}, expected ({len(names)}, {len(CLASSES)})")
    labels = np.array([CLASSES.index(n) for n in names], dtype=np.int64)
    try:
        t = fit_temperature(probs, labels)
    except ValueError as exc:
        raise ExportError(f"{heldout}: {exc}") from None
    evidence: dict[str, Any] = {
        "temperature": round(t, 4),
        "windows": len(names),
        "nll_before": round(nll(probs, labels), 5),
        "nll_after": round(nll(probs, labels, t), 5),
        "ece_before": round(expected_calibration_error(probs, labels), 5),
        "ece_after": round(expected_calibration_error(scaled(probs, t), labels), 5),
        "source": str(heldout),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(evidence, indent=2) + "\n", encoding="utf-8")
    return evidence
