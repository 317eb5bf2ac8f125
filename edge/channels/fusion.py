"""Late fusion of the channels that give a class distribution: face, voice (speech model) and words.

Only channels that are present and whose quality is ``good`` take part; the fused distribution is
their mean (equal weights), and the window records which channels it used. The acoustic voice cues
(arousal, valence) and the pulse carry no class distribution and are reported beside it, not fused.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.analysis.results import GOOD
from edge.labels import mean_distribution

FUSABLE = ("face", "voice", "words")


def late_fusion(
    channels: Sequence[tuple[str, tuple[float, ...] | None, str]],
) -> tuple[tuple[float, ...] | None, tuple[str, ...]]:
    """``(name, probs, quality)`` per channel -> (fused distribution or None, channels used)."""
    used = [(name, probs) for name, probs, quality in channels if probs is not None and quality == GOOD]
    return mean_distribution([p for _, p in used]), tuple(name for name, _ in used)
