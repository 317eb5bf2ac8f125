"""The window's emotion from its channels' votes: late fusion, the affect space, calibration,
abstention, mixed emotions and the channels' Shapley contributions.

The room fuses every window with this code, and ``clinic-export fit`` replays it on the votes that
``clinic-edge evaluate`` stored, so that what fit learns is what the room then does. A fuser is
:class:`LateFusion` (here) or the model pack's trained head (``edge.fusion.head``).

**Late fusion** is a weighted linear pool. Channel ``c`` gets the weight ``w_c * r_c``: its weight
(``fusion.weights``, 1 for a channel without one) times its reliability in this window, which each
channel states with its vote (the face's coverage x mean detection score, the voiced share / 0.5, the
word count / 8, each capped at 1); each channel's distribution first takes its own temperature
(``fusion.channel_temperatures``). The fused distribution is then calibrated by ``fusion.temperature``.

**The affect space** every channel shares is (valence, arousal) on Russell's circumplex. The face and
the words give a class distribution, placed in the space by the expectation of their classes' places
(:data:`contract.classes.CLASS_AFFECT`); the voice gives its cues' valence and arousal against the
speaker's baseline. The window's affect is the channels' weighted mean (the fusion's weights times each
channel's reliability, and for a distribution the share of it that is not neutral).

**Calm.** The face model has no calm class (FER-2013 has none), so calm could never be the answer: low
arousal with non-negative valence while the distribution's top class is neutral turns neutral into
calm, in proportion to how low the arousal is (none at ``CALM_FROM`` or above, all of it at
``CALM_FULL`` or below).

**The decision.** Only channels that are present and ``good`` enter. When the two top classes of the
calibrated distribution are within ``fusion.mixed_margin`` of each other (and together reach
``fusion.min_confidence``) the window is ``mixed`` and names both; otherwise the top class is the label
when its probability reaches ``fusion.min_confidence``, and below it the window abstains
(``uncertain``: no label, the distribution kept).

**Shapley values.** The value of a coalition of channels is the fused probability of the window's
predicted class when only they are fused; the empty coalition is the uniform baseline 1/8. The values
sum to the fused probability minus the baseline, and an absent channel gets exactly zero.

**The voice's cues** alone give a distribution near their place in the affect space, tempered towards
uniform (:func:`cue_distribution`): cues are weak evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import factorial
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from contract.classes import CLASSES, affect_of, distribution_of, mean_distribution
from contract.temperature import scaled

CUE_TEMPERING = 1.0 / 3  # the share of the cues' kernel kept at full confidence (the rest is uniform)


Probs = npt.NDArray[np.float64]


class Fuser(Protocol):
    method: str

    def fuse(self, probs: Mapping[str, Probs], reliability: Mapping[str, float]) -> Probs:
        """The fused distribution of the channels in ``probs`` (at least one)."""
        ...


class LateFusion:
    method = "late"

    def __init__(self, weights: Mapping[str, float], temperatures: Mapping[str, float] | None = None) -> None:
        """``temperatures``: each channel's distribution is sharpened (below 1) or flattened (above 1)
        by its own temperature before the pool (1 for a channel without one)."""
        self.weights = dict(weights)
        self.temperatures = dict(temperatures or {})

    def fuse(self, probs: Mapping[str, Probs], reliability: Mapping[str, float]) -> Probs:
        w = np.array([self.weights.get(c, 1.0) * max(reliability.get(c, 1.0), 1e-3) for c in probs])
        stacked = np.stack(
            [scaled(np.asarray(p, dtype=np.float64), self.temperatures.get(c, 1.0)) for c, p in probs.items()]
        )
        if w.sum() <= 0:  # every channel given weight 0: no evidence, the uniform distribution
            return np.full(stacked.shape[1], 1.0 / stacked.shape[1])
        fused: Probs = (w[:, None] * stacked).sum(axis=0) / w.sum()
        out: Probs = fused / fused.sum()
        return out


CALM_FROM = -0.1  # arousal above this is not calm
CALM_FULL = -0.5  # at or below this, all of neutral's probability becomes calm's
NEUTRAL, CALM = CLASSES.index("neutral"), CLASSES.index("calm")


def mean_affect(affect: Mapping[str, tuple[float, float]], weights: Mapping[str, float]) -> tuple[float, float] | None:
    """The weighted mean of the channels' (valence, arousal); the plain mean when every weight is 0
    (a wholly neutral face is at the centre); None without a channel."""
    if not affect:
        return None
    w = np.array([max(weights.get(n, 0.0), 0.0) for n in affect])
    if w.sum() <= 0:
        w = np.ones(len(affect))
    points = np.array(list(affect.values()), dtype=np.float64)
    v, a = (w[:, None] * points).sum(axis=0) / w.sum()
    return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))


def calm(probs: Probs, valence: float, arousal: float) -> Probs:
    """``probs`` with neutral turned into calm where the affect is calm (see the module)."""
    if valence < 0 or arousal >= CALM_FROM or int(np.argmax(probs)) != NEUTRAL:
        return probs
    share = min(1.0, (CALM_FROM - arousal) / (CALM_FROM - CALM_FULL))
    out = np.array(probs, dtype=np.float64)
    moved = out[NEUTRAL] * share
    out[NEUTRAL] -= moved
    out[CALM] += moved
    return out


def shapley(players: Sequence[str], value: Callable[[frozenset[str]], float]) -> dict[str, float]:
    n = len(players)
    cache: dict[frozenset[str], float] = {}

    def v(coalition: frozenset[str]) -> float:
        if coalition not in cache:
            cache[coalition] = value(coalition)
        return cache[coalition]

    out: dict[str, float] = {}
    for player in players:
        others = [p for p in players if p != player]
        total = 0.0
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for subset in combinations(others, size):
                s = frozenset(subset)
                total += weight * (v(s | {player}) - v(s))
        out[player] = total
    return out


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


class FusionSettings(Protocol):
    """What the decision needs of the room's ``[fusion]`` (:class:`edge.config.models.FusionConfig`)."""

    @property
    def temperature(self) -> float: ...
    @property
    def min_confidence(self) -> float: ...
    @property
    def mixed_margin(self) -> float: ...


class WindowFusion:
    def __init__(self, fuser: Fuser, config: FusionSettings) -> None:
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

    def usable(self, votes: Sequence[ChannelVote]) -> list[ChannelVote]:
        """The votes this fusion takes: good, with a distribution, and (for a trained head) of its channels."""
        return [
            v
            for v in votes
            if v.probs is not None and v.quality == "good" and (self.accepts is None or v.name in self.accepts)
        ]

    def top(self, votes: Sequence[ChannelVote]) -> int | None:
        """The fused distribution's top class (as :meth:`__call__` finds it, without the Shapley values)."""
        usable = self.usable(votes)
        if not usable:
            return None
        return int(np.argmax(self.distribution(usable, frozenset(v.name for v in usable))))

    def __call__(self, votes: Sequence[ChannelVote]) -> FusionResult:
        usable = self.usable(votes)
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


def cue_distribution(
    valence: float, arousal: float, confidence: float, tempering: float = CUE_TEMPERING
) -> tuple[float, ...]:
    """The classes near the cues' place in the affect space, tempered towards uniform by the cues'
    confidence: at most ``tempering`` of the kernel is kept (a third by default: cues alone are then
    never enough for a class label, their top class staying below a third, but they move the fusion
    and can make a neutral face calm)."""
    kernel = np.asarray(distribution_of(valence, arousal), dtype=np.float64)
    weight = min(max(confidence, 0.0), 1.0) * tempering
    out = mean_distribution([(weight * kernel + (1.0 - weight) / kernel.shape[0]).tolist()])
    if out is None:  # pragma: no cover - one row always has a mean
        raise ValueError("no distribution")
    return out
