"""The window's emotion from its channels: fusion, calibration, abstention, mixed emotions, and the
channels' Shapley contributions.

Only channels that are present and ``good`` enter. When the two top classes of the calibrated
distribution are within ``fusion.mixed_margin`` of each other (and together reach
``fusion.min_confidence``) the window is ``mixed`` and names both; otherwise the top class is the
label when its probability reaches ``fusion.min_confidence``, and below it the window abstains
(``uncertain``: no label, the distribution kept). The window also has a place in the affect space
(valence, arousal: :mod:`edge.fusion.affect`), which turns a neutral window calm when it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from contract.classes import CLASSES, affect_of, mean_distribution
from contract.temperature import scaled
from edge.config.models import FusionConfig
from edge.fusion.affect import NEUTRAL, calm, mean_affect
from edge.fusion.late import Fuser, Probs
from edge.fusion.shapley import shapley

State = Literal["confident", "uncertain", "mixed"]
BASELINE = 1.0 / len(CLASSES)


@dataclass(frozen=True, slots=True)
class ChannelVote:
    name: str
    probs: tuple[float, ...] | None
    quality: str
    reliability: float = 1.0
    # (valence, arousal) where the channel measures it directly (the voice's cues); otherwise the
    # place of ``probs`` in the affect space
    affect: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class FusionResult:
    probs: tuple[float, ...] | None
    label: str | None  # None when no channel was good or the window abstained
    confidence: float | None
    state: State | None
    second: str | None  # the other class of a mixed window
    used: tuple[str, ...]
    method: str | None
    contributions: dict[str, float] = field(default_factory=dict)  # Shapley value per channel used
    valence: float | None = None  # the fused place in the affect space (edge.fusion.affect)
    arousal: float | None = None


class WindowFusion:
    def __init__(self, fuser: Fuser, config: FusionConfig) -> None:
        self.fuser = fuser
        self.config = config
        # A trained head takes only the channels it was trained on; late fusion takes any that votes.
        modalities = getattr(fuser, "modalities", None)
        self.accepts: frozenset[str] | None = None if modalities is None else frozenset(modalities)

    def affect(self, votes: Sequence[ChannelVote], subset: frozenset[str]) -> tuple[float, float] | None:
        """The channels' weighted mean place in the affect space. A distribution's place weighs by how
        much of it is not neutral (a neutral face says little about arousal); a channel that measures
        affect directly (the voice's cues) by its reliability alone."""
        weights = getattr(self.fuser, "weights", {})
        places: dict[str, tuple[float, float]] = {}
        strength: dict[str, float] = {}
        for v in votes:
            if v.name not in subset or not v.probs:
                continue
            base = weights.get(v.name, 1.0) * v.reliability
            if v.affect is not None:
                places[v.name], strength[v.name] = v.affect, base
            else:
                places[v.name], strength[v.name] = affect_of(v.probs), base * (1.0 - v.probs[NEUTRAL])
        return mean_affect(places, strength)

    def distribution(self, votes: Sequence[ChannelVote], subset: frozenset[str]) -> Probs:
        chosen = {v.name: np.asarray(v.probs, dtype=np.float64) for v in votes if v.name in subset and v.probs}
        reliability = {v.name: v.reliability for v in votes}
        fused = scaled(self.fuser.fuse(chosen, reliability), self.config.temperature)
        place = self.affect(votes, subset)
        return fused if place is None else calm(fused, *place)

    def __call__(self, votes: Sequence[ChannelVote]) -> FusionResult:
        usable = [
            v
            for v in votes
            if v.probs is not None and v.quality == "good" and (self.accepts is None or v.name in self.accepts)
        ]
        used = tuple(v.name for v in usable)
        if not usable:
            return FusionResult(None, None, None, None, None, (), None)
        fused = self.distribution(usable, frozenset(used))
        probs = mean_distribution([fused.tolist()])
        if probs is None:  # pragma: no cover - a non-empty list always has a mean
            raise ValueError("fusion gave no distribution")
        order = np.argsort(probs)[::-1]
        best, runner = int(order[0]), int(order[1])
        confidence = float(probs[best])
        state: State = "confident"
        label: str | None = CLASSES[best]
        second = None
        margin = probs[best] - probs[runner]
        if margin < self.config.mixed_margin and probs[best] + probs[runner] >= self.config.min_confidence:
            state, second = "mixed", CLASSES[runner]  # two classes close together, and together likely
        elif confidence < self.config.min_confidence:
            state, label = "uncertain", None

        def value(coalition: frozenset[str]) -> float:
            if not coalition:
                return BASELINE
            return float(self.distribution(usable, coalition)[best])

        contributions = {k: round(v, 5) for k, v in shapley(used, value).items()}
        place = self.affect(usable, frozenset(used))
        valence, arousal = (None, None) if place is None else (round(place[0], 4), round(place[1], 4))
        return FusionResult(
            probs, label, round(confidence, 5), state, second, used, self.fuser.method, contributions, valence, arousal
        )
