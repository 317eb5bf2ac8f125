"""Cheap per-frame image quality measures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def frame_luma(rgb: npt.NDArray[np.uint8]) -> float:
    """Mean Rec. 601 luma (0-255) over a 1-in-8 subsample of the frame."""
    sub = rgb[::8, ::8].astype(np.float32)
    return float((sub[..., 0] * 0.299 + sub[..., 1] * 0.587 + sub[..., 2] * 0.114).mean())
