"""The audio every stage works on: 16 kHz mono float32 in [-1, 1].

The room's capture resamples to it, the speech models are trained on it and speech-to-text expects
it; a model whose manifest names another rate is refused.
"""

from __future__ import annotations

from typing import Final

SAMPLE_RATE: Final = 16_000
