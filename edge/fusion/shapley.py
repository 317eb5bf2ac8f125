"""Exact Shapley values of the channels for one window's fused result.

The value of a coalition ``S`` of channels is the fused probability of the window's predicted class
when only the channels in ``S`` are fused; the empty coalition is the uniform baseline 1/8. With at
most three fusable channels this is at most eight fusion evaluations. The values sum to the fused
probability minus the baseline (efficiency), and a channel that is absent gets exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from math import factorial


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
