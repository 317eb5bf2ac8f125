"""What capture hands to analysis. These live in memory only and are never stored or sent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One RGB frame; ``pts_s`` is the buffer's presentation time in seconds of stream time."""

    pts_s: float
    rgb: npt.NDArray[np.uint8]  # (H, W, 3)

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {self.rgb.shape} {self.rgb.dtype}")


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono float32 samples at ``rate`` Hz starting at ``pts_s`` seconds of stream time."""

    pts_s: float
    samples: npt.NDArray[np.float32]  # (N,)
    rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError(f"expected (N,) float32 samples, got {self.samples.shape} {self.samples.dtype}")

    @property
    def end_s(self) -> float:
        return self.pts_s + self.samples.shape[0] / self.rate
