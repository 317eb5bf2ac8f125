"""How right a set of predictions is: the scores ``clinic-edge evaluate`` reports and ``clinic-export
fit`` optimises, computed the same way for both.

A prediction is a class index or ``None`` (the predictor abstained). Abstentions are *coverage*:
:func:`score` reports them, and with ``abstain_is_error`` (the fused result) also counts them as
wrong in every score; otherwise the scores are over the clips that have a prediction.

* accuracy; unweighted average recall (UAR: the mean of the per-class recalls over the classes that
  occur in the truth, the speech-emotion field's headline, fair to rare classes); macro-F1 (over the
  same classes); Cohen's kappa (agreement beyond chance);
* the confusion matrix over the product's eight classes (rows: truth, columns: prediction);
* expected calibration error (15 equal-width bins of the top probability) and the reliability
  diagram's bins;
* 95 % intervals of accuracy, UAR and macro-F1 by bootstrap resampling *speakers* (clips of one
  speaker are not independent);
* Lin's concordance correlation coefficient for continuous labels (valence, arousal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

N_CLASSES = 8
ECE_BINS = 15
BOOTSTRAP = 1000


def confusion(truth: Sequence[int], predicted: Sequence[int | None], n: int = N_CLASSES) -> npt.NDArray[np.int64]:
    """Counts of (truth, prediction) for the clips with a prediction."""
    out = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        if p is not None:
            out[t, p] += 1
    return out


def _rates(truth: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], n: int) -> tuple[float, float, float, float]:
    """accuracy, UAR, macro-F1, kappa; ``predicted`` -1 is an abstention counted as wrong."""
    if truth.size == 0:
        return (float("nan"),) * 4
    present = np.unique(truth)
    recalls, f1s = [], []
    for c in present:
        tp = float(np.sum((truth == c) & (predicted == c)))
        actual = float(np.sum(truth == c))
        said = float(np.sum(predicted == c))
        recall = tp / actual
        precision = tp / said if said else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    accuracy = float(np.mean(truth == predicted))
    answered = predicted >= 0
    expected = sum(float(np.mean(truth == c)) * float(np.mean((predicted == c) & answered)) for c in range(n))
    kappa = (accuracy - expected) / (1 - expected) if expected < 1 else 0.0
    return accuracy, float(np.mean(recalls)), float(np.mean(f1s)), float(kappa)


@dataclass(frozen=True)
class Scores:
    n_clips: int  # clips scored
    covered: int  # clips with a prediction
    accuracy: float
    uar: float
    macro_f1: float
    kappa: float
    confusion: list[list[int]]
    abstained: list[int]  # per true class: clips without a prediction
    ece: float | None
    reliability: list[dict[str, float]]  # per bin: confidence, accuracy, count
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95 %, by speaker
    ccc: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        return self.covered / self.n_clips if self.n_clips else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_clips": self.n_clips,
            "covered": self.covered,
            "coverage": self.coverage,
            "accuracy": self.accuracy,
            "uar": self.uar,
            "macro_f1": self.macro_f1,
            "kappa": self.kappa,
            "confusion": self.confusion,
            "abstained": self.abstained,
            "ece": self.ece,
            "reliability": self.reliability,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "ccc": self.ccc,
        }


def calibration(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS
) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error and the reliability diagram's non-empty bins."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece, diagram = 0.0, []
    for b in range(bins):
        inside = which == b
        if not inside.any():
            continue
        c, a, k = float(conf[inside].mean()), float(hit[inside].mean()), int(inside.sum())
        ece += k / conf.size * abs(c - a)
        diagram.append(
            {"low": float(edges[b]), "high": float(edges[b + 1]), "confidence": c, "accuracy": a, "count": k}
        )
    return ece, diagram


def ccc(truth: Sequence[float], predicted: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient (1: the same values; 0: no agreement)."""
    x, y = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if x.size < 2:
        return float("nan")
    cov = float(np.mean((x - x.mean()) * (y - y.mean())))
    denominator = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return 2 * cov / denominator if denominator > 0 else float("nan")


def score(
    truth: Sequence[int],
    predicted: Sequence[int | None],
    speakers: Sequence[str],
    confidence: Sequence[float | None] | None = None,
    *,
    abstain_is_error: bool = False,
    continuous: dict[str, tuple[Sequence[float | None], Sequence[float | None]]] | None = None,
    seed: int = 0,
    bootstrap: int = BOOTSTRAP,
) -> Scores:
    """Score the predictions of one predictor (a channel, or the fused result)."""
    t_all = np.asarray(truth, dtype=np.int64)
    p_all = np.asarray([-1 if p is None else p for p in predicted], dtype=np.int64)
    spk = np.asarray(speakers)
    keep = np.ones(t_all.size, dtype=bool) if abstain_is_error else p_all >= 0
    t, p, s = t_all[keep], p_all[keep], spk[keep]
    accuracy, uar, f1, kappa = _rates(t, p, N_CLASSES)
    matrix = confusion(list(t_all), [None if v < 0 else int(v) for v in p_all])
    abstained = [int(np.sum((t_all == c) & (p_all < 0))) for c in range(N_CLASSES)]
    ece: float | None = None
    diagram: list[dict[str, float]] = []
    if confidence is not None:
        conf = [
            (float(c), bool(tt == pp))
            for c, tt, pp in zip(confidence, t_all, p_all, strict=True)
            if c is not None and pp >= 0
        ]
        if conf:
            ece, diagram = calibration([c for c, _ in conf], [h for _, h in conf])
    intervals: dict[str, tuple[float, float]] = {}
    unique = np.unique(s)
    if unique.size >= 2 and t.size and bootstrap > 0:
        rng = np.random.default_rng(seed)
        by = {u: np.flatnonzero(s == u) for u in unique}
        draws = []
        for _ in range(bootstrap):
            picked = np.concatenate([by[u] for u in rng.choice(unique, size=unique.size, replace=True)])
            draws.append(_rates(t[picked], p[picked], N_CLASSES)[:3])
        arr = np.asarray(draws)
        for i, name in enumerate(("accuracy", "uar", "macro_f1")):
            low, high = np.nanpercentile(arr[:, i], [2.5, 97.5])
            intervals[name] = (float(low), float(high))
    agreement: dict[str, float] = {}
    for name, (labels, values) in (continuous or {}).items():
        pairs = [(float(a), float(b)) for a, b in zip(labels, values, strict=True) if a is not None and b is not None]
        if len(pairs) >= 2:
            agreement[name] = ccc([a for a, _ in pairs], [b for _, b in pairs])
    return Scores(
        n_clips=int(t_all.size),
        covered=int(np.sum(p_all >= 0)),
        accuracy=accuracy,
        uar=uar,
        macro_f1=f1,
        kappa=kappa,
        confusion=matrix.tolist(),
        abstained=abstained,
        ece=ece,
        reliability=diagram,
        intervals=intervals,
        ccc=agreement,
    )
