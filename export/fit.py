"""``clinic-export fit``: the room's fusion fitted from labels, never from media.

Input: an evaluation folder (``clinic-edge evaluate``'s ``clips/*.json``: each clip's labels and the
room's per-window votes) and the pack it ran. What is fitted, by replaying the room's own fusion
(:mod:`clinic_signals.fusion`) on the stored votes:

* the late-fusion weights and the voice cues' tempering, by the clip-level unweighted average recall
  (UAR) of the fused result (coordinate search over a grid; ties keep the room's value);
* each channel's temperature, by the negative log-likelihood of its window distributions (then the
  weights once more);
* the fused temperature, by the negative log-likelihood of the fused clip distributions.

Words: on clips whose sentences are fixed and neutral (RAVDESS, CREMA-D) the words carry no signal;
their votes are fused as the room fuses them, but the words' weight and temperature are fitted only
when some clips have varying words (a manifest, clinicians' judgements).

The disparity threshold is fitted from clips whose disparity is known (``ClipRecord.disparate``):
acted corpora are congruent by design (every moment there is false), clinicians' judged moments and a
manifest's ``disparate`` column give real ones. Each clip's stored window scores are replayed through
the room's moment rule (:mod:`clinic_signals.moments`) at each candidate threshold; the measure is
balanced accuracy (moments found on disparate clips, none on congruent ones). Acted corpora alone
hold no real moment, so the threshold is learned only where both kinds of clip exist.

Held-out figures come from leave-speakers-out cross-validation (no speaker on both sides): each clip
is predicted by parameters fitted without its speaker, before (the room's current parameters) and
after. A part whose held-out measure improves by ``margin`` is written (the fusion by UAR, the
threshold by balanced accuracy); the other keeps the room's values. ``fit`` refuses, writing
nothing, when neither improves.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clinic_signals.fusion import CUE_TEMPERING, ChannelVote, LateFusion, WindowFusion, cue_distribution
from clinic_signals.scores import score
from contract.classes import CLASSES
from contract.evaluation import ClipRecord, WindowRecord
from contract.pack import DisparityFit, FitEvidence, FusionCalibration
from contract.temperature import scaled
from export.errors import ExportError, FitRefusedError
from export.folds import folds
from export.pack import read_index, write_index
from export.threshold import ThresholdOutcome, cross_validate_threshold

logger = logging.getLogger(__name__)

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
TEMPERATURES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TEMPERINGS = (0.1, 0.2, CUE_TEMPERING, 0.5, 0.75, 1.0)
CHANNELS = ("face", "voice", "words")


@dataclass(frozen=True)
class Settings:
    """The decision's settings the fit does not change (the room's ``[fusion]``)."""

    temperature: float = 1.0
    min_confidence: float = 0.4
    mixed_margin: float = 0.1


@dataclass(frozen=True)
class Params:
    weights: dict[str, float]
    temperatures: dict[str, float]
    tempering: float = CUE_TEMPERING
    fused_temperature: float = 1.0
    settings: Settings = field(default_factory=Settings)


def _votes(window: WindowRecord, params: Params) -> list[ChannelVote]:
    out = []
    for v in window.votes:
        probs = v.probs
        if v.from_cues and v.affect is not None and v.cue_confidence is not None and v.quality == "good":
            probs = cue_distribution(v.affect[0], v.affect[1], v.cue_confidence, params.tempering)
        out.append(ChannelVote(v.name, probs, v.quality, v.reliability, v.affect))
    return out


def fused(window: WindowRecord, params: Params) -> tuple[float, ...] | None:
    """The window's fused distribution as the room computes it with ``params`` (no Shapley, no label)."""
    fusion = WindowFusion(LateFusion(params.weights, params.temperatures), replace(params.settings, temperature=1.0))
    usable = [v for v in _votes(window, params) if v.probs is not None and v.quality == "good"]
    if not usable:
        return None
    return tuple(fusion.distribution(usable, frozenset(v.name for v in usable)).tolist())


def _clip_distribution(record: ClipRecord, params: Params) -> npt.NDArray[np.float64] | None:
    rows = [d for w in record.windows if (d := fused(w, params)) is not None]
    if not rows:
        return None
    mean: npt.NDArray[np.float64] = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    out: npt.NDArray[np.float64] = mean / mean.sum()
    return out


def uar(records: Sequence[ClipRecord], params: Params) -> float:
    """Clip-level UAR of the fused result (abstentions are errors), as evaluate scores it."""
    truth, predicted = [], []
    for r in records:
        d = _clip_distribution(r, params)
        truth.append(_truth(r))
        predicted.append(None if d is None else int(np.argmax(d)))
    return score(truth, predicted, [r.speaker for r in records], abstain_is_error=True, bootstrap=0).uar


def _nll(pairs: Sequence[tuple[Sequence[float], int]], temperature: float) -> float:
    total = 0.0
    for probs, label in pairs:
        p = scaled(np.asarray(probs, dtype=np.float64), temperature)
        total -= math.log(max(float(p[label]), 1e-9))
    return total / max(len(pairs), 1)


def _channel_pairs(records: Sequence[ClipRecord], channel: str) -> list[tuple[Sequence[float], int]]:
    return [
        (v.probs, _truth(r))
        for r in records
        if channel != "words" or r.words_applicable
        for w in r.windows
        for v in w.votes
        if v.name == channel and v.quality == "good" and v.probs
    ]


def _learnable(records: Sequence[ClipRecord]) -> list[str]:
    present = {v.name for r in records for w in r.windows for v in w.votes if v.probs}
    words = any(r.words_applicable for r in records)
    return [c for c in CHANNELS if c in present and (c != "words" or words)]


def _search(records: Sequence[ClipRecord], params: Params, learn: Sequence[str]) -> Params:
    """Coordinate search of the weights and the cues' tempering by clip-level UAR; a value replaces
    the current one only when strictly better (ties keep what the room had)."""
    best = uar(records, params)
    for _ in range(3):
        improved = False
        for c in learn:
            for w in WEIGHTS:
                trial = replace(params, weights={**params.weights, c: w})
                value = uar(records, trial)
                if value > best + 1e-9:
                    best, params, improved = value, trial, True
        if "voice" in learn:
            for t in TEMPERINGS:
                trial = replace(params, tempering=t)
                value = uar(records, trial)
                if value > best + 1e-9:
                    best, params, improved = value, trial, True
        if not improved:
            break
    return params


def fit_params(records: Sequence[ClipRecord], start: Params) -> Params:
    """Parameters fitted on ``records`` from ``start``: the weights (a channel that misleads the
    fusion loses its weight), then each channel's temperature by its likelihood, the weights again,
    and the fused temperature."""
    learn = _learnable(records)
    params = _search(records, start, learn)
    temperatures = dict(params.temperatures)
    for c in learn:
        pairs = _channel_pairs(records, c)
        if pairs:
            temperatures[c] = min(TEMPERATURES, key=lambda t: (_nll(pairs, t), abs(t - temperatures.get(c, 1.0))))
    params = _search(records, replace(params, temperatures=temperatures), learn)
    pairs = [(tuple(d.tolist()), _truth(r)) for r in records if (d := _clip_distribution(r, params)) is not None]
    fused_t = min(TEMPERATURES, key=lambda t: (_nll(pairs, t), abs(t - 1.0))) if pairs else 1.0
    return replace(params, fused_temperature=fused_t)


@dataclass(frozen=True)
class Outcome:
    params: Params
    before: float  # held-out UAR with the room's current parameters
    after: float  # held-out UAR with parameters fitted without each clip's speaker
    speakers: tuple[str, ...]
    clips: int
    learned: tuple[str, ...]


def _labelled(records: Sequence[ClipRecord]) -> list[ClipRecord]:
    return [r for r in records if r.label is not None]


def _truth(r: ClipRecord) -> int:
    return CLASSES.index(r.label or "")


def cross_validate(records: Sequence[ClipRecord], start: Params) -> Outcome:
    """Leave-speakers-out: every clip judged by parameters fitted without its speaker."""
    records = _labelled(records)
    speakers = [r.speaker for r in records]
    if len(set(speakers)) < 2:
        raise ExportError("fit needs labelled clips of at least two speakers (held-out figures leave speakers out)")
    truth: list[int] = []
    before: list[int | None] = []
    after: list[int | None] = []
    for held in folds(speakers):
        train = [r for r in records if r.speaker not in held]
        test = [r for r in records if r.speaker in held]
        fitted = fit_params(train, start)
        for r in test:
            truth.append(_truth(r))
            for params, out in ((start, before), (fitted, after)):
                d = _clip_distribution(r, params)
                out.append(None if d is None else int(np.argmax(d)))
    spk = [""] * len(truth)
    b = score(truth, before, spk, abstain_is_error=True, bootstrap=0).uar
    a = score(truth, after, spk, abstain_is_error=True, bootstrap=0).uar
    return Outcome(
        fit_params(records, start), b, a, tuple(sorted(set(speakers))), len(records), tuple(_learnable(records))
    )


def start_params(evaluation: dict[str, Any]) -> Params:
    """The room's parameters when the clips were evaluated (``evaluation.json``'s ``room``)."""
    fusion = evaluation.get("room", {}).get("fusion", {})
    return Params(
        weights={k: float(v) for k, v in fusion.get("weights", {}).items()},
        temperatures={k: float(v) for k, v in fusion.get("channel_temperatures", {}).items()},
        tempering=float(evaluation.get("room", {}).get("voice_tempering", CUE_TEMPERING)),
        fused_temperature=float(fusion.get("temperature", 1.0)),
        settings=Settings(
            float(fusion.get("temperature", 1.0)),
            float(fusion.get("min_confidence", 0.4)),
            float(fusion.get("mixed_margin", 0.1)),
        ),
    )


def read_evaluation(folder: Path) -> tuple[list[ClipRecord], dict[str, Any]]:
    """The clip records and ``evaluation.json`` of an evaluation folder.

    Raises:
        ExportError: not an evaluation folder, or no clip the room analysed.
    """
    import json  # noqa: PLC0415

    summary = folder / "evaluation.json"
    clips = sorted((folder / "clips").glob("*.json"))
    if not summary.is_file() or not clips:
        raise ExportError(
            f"{folder} is not an evaluation folder (expected evaluation.json and clips/*.json from "
            "`clinic-edge evaluate --out`)"
        )
    try:
        records = [ClipRecord.model_validate_json(p.read_text(encoding="utf-8")) for p in clips]
        body = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{folder}: unreadable evaluation records: {exc}") from None
    analysed = [r for r in records if not r.error]
    if not analysed:
        raise ExportError(f"{folder}: no clip the room analysed")
    return analysed, body


@dataclass(frozen=True)
class Fitted:
    """What ``fit`` learned and wrote: the fusion (None: no labelled clips of two speakers), the
    disparity threshold (None: no clips that teach one), and which of them passed the margin."""

    fusion: Outcome | None
    threshold: ThresholdOutcome | None
    fusion_written: bool
    threshold_written: bool

    def summary(self) -> str:
        parts = []
        kept_fusion, kept_threshold = "kept the room's fusion", "kept the room's threshold"
        if self.fusion is not None:
            f = self.fusion
            parts.append(
                f"held-out UAR {100 * f.before:.1f} % -> {100 * f.after:.1f} % ({f.clips} clips, "
                f"{len(f.speakers)} speakers; {'written' if self.fusion_written else kept_fusion})"
            )
        if self.threshold is not None:
            t = self.threshold
            parts.append(
                f"disparity threshold {t.start} -> {t.threshold}: held-out balanced accuracy {100 * t.before:.1f} % "
                f"-> {100 * t.after:.1f} % ({t.clips} clips, {t.disparate} disparate; "
                f"{'written' if self.threshold_written else kept_threshold})"
            )
        return "; ".join(parts) or "nothing to fit"


def fit_pack(evaluation: Path, pack: Path, out: Path, key: Path, margin: float = 0.02) -> Fitted:
    """Fit from ``evaluation``, and write ``pack`` with the fitted calibration as ``out``, signed.

    Raises:
        FitRefusedError: neither the fusion's held-out UAR nor the threshold's held-out balanced
            accuracy improved by ``margin`` (nothing written).
        ExportError: unreadable input, ``out`` exists, or signing failed.
    """
    from contract.signing import SignatureError, sign_file  # noqa: PLC0415

    if out.exists():
        raise ExportError(f"{out} exists: fit writes a new pack folder")
    records, body = read_evaluation(evaluation)
    start = start_params(body)
    rule = body.get("room", {}).get("disparity", {})
    labelled = _labelled(records)
    fusion = cross_validate(labelled, start) if len({r.speaker for r in labelled}) >= 2 else None
    threshold = (
        cross_validate_threshold(records, float(rule["threshold"]), float(rule.get("min_duration_s", 0.0)))
        if rule.get("enabled", True) and "threshold" in rule
        else None
    )
    if fusion is None and threshold is None:
        raise ExportError(
            f"{evaluation}: nothing to fit from (labelled clips of at least two speakers, or clips of known "
            "disparity of both kinds)"
        )
    result = Fitted(
        fusion,
        threshold,
        fusion_written=fusion is not None and fusion.after >= fusion.before + margin,
        threshold_written=threshold is not None and threshold.after >= threshold.before + margin,
    )
    logger.info("%s", result.summary())
    if not (result.fusion_written or result.threshold_written):
        raise FitRefusedError(
            f"{result.summary()}: nothing improves by {100 * margin:.1f} points, nothing written (the room's "
            "current fusion and threshold stay)"
        )
    index = read_index(pack)
    p = fusion.params if fusion is not None and result.fusion_written else start
    told = fusion
    calibration = FusionCalibration(
        weights=p.weights,
        channel_temperatures=p.temperatures,
        temperature=p.fused_temperature,
        voice_tempering=p.tempering,
        disparity_threshold=threshold.threshold if threshold is not None and result.threshold_written else None,
        speakers=tuple(sorted({r.speaker for r in records})),
        fitted=FitEvidence(
            held_out_uar_before=round(told.before, 4) if told else None,
            held_out_uar_after=round(told.after, 4) if told else None,
            clips=len(records),
            speakers=len({r.speaker for r in records}),
            learned=told.learned if told and result.fusion_written else (),
            protocol=f"leave-speakers-out, {len(folds([r.speaker for r in records]))} folds, clip-level UAR"
            + (" and balanced accuracy of moments" if threshold is not None else ""),
            corpora=tuple(sorted({r.corpus for r in records})),
            margin=margin,
            fusion_written=result.fusion_written,
            disparity=None
            if threshold is None
            else DisparityFit(
                threshold_before=threshold.start,
                threshold_after=threshold.threshold,
                held_out_balanced_accuracy_before=round(threshold.before, 4),
                held_out_balanced_accuracy_after=round(threshold.after, 4),
                clips=threshold.clips,
                disparate=threshold.disparate,
                written=result.threshold_written,
            ),
        ),
    )
    shutil.copytree(pack, out, symlinks=True)
    (out / "pack.json.sig").unlink(missing_ok=True)
    write_index(out, index.model_copy(update={"calibration": calibration}))
    try:
        sign_file(out / "pack.json", key)
    except SignatureError as exc:
        raise ExportError(f"the fitted pack {out} could not be signed: {exc}") from None
    return result
