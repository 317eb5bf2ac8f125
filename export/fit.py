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
when some clips have varying words (a manifest, clinicians' judgements). The disparity threshold has
no label in these records and is kept as the room has it.

Held-out figures come from leave-speakers-out cross-validation (no speaker on both sides): each clip
is predicted by parameters fitted without its speaker, before (the room's current parameters) and
after. ``fit`` refuses, writing nothing, unless held-out UAR improves by ``margin``.
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
from contract.pack import FitEvidence, FusionCalibration
from contract.temperature import scaled
from export.errors import ExportError, FitRefusedError
from export.pack import read_index, write_index

logger = logging.getLogger(__name__)

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
TEMPERATURES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TEMPERINGS = (0.1, 0.2, CUE_TEMPERING, 0.5, 0.75, 1.0)
CHANNELS = ("face", "voice", "words")
FOLDS = 5


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
        truth.append(CLASSES.index(r.label))
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
        (v.probs, CLASSES.index(r.label))
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
    pairs = [
        (tuple(d.tolist()), CLASSES.index(r.label)) for r in records if (d := _clip_distribution(r, params)) is not None
    ]
    fused_t = min(TEMPERATURES, key=lambda t: (_nll(pairs, t), abs(t - 1.0))) if pairs else 1.0
    return replace(params, fused_temperature=fused_t)


def folds(speakers: Sequence[str], k: int = FOLDS) -> list[set[str]]:
    """Speakers dealt into ``k`` folds (at most one per speaker), in a fixed order."""
    unique = sorted(set(speakers))
    k = max(2, min(k, len(unique)))
    return [set(unique[i::k]) for i in range(k)]


@dataclass(frozen=True)
class Outcome:
    params: Params
    before: float  # held-out UAR with the room's current parameters
    after: float  # held-out UAR with parameters fitted without each clip's speaker
    speakers: tuple[str, ...]
    clips: int
    learned: tuple[str, ...]


def cross_validate(records: Sequence[ClipRecord], start: Params) -> Outcome:
    """Leave-speakers-out: every clip judged by parameters fitted without its speaker."""
    speakers = [r.speaker for r in records]
    if len(set(speakers)) < 2:
        raise ExportError("fit needs clips of at least two speakers (held-out figures leave speakers out)")
    truth: list[int] = []
    before: list[int | None] = []
    after: list[int | None] = []
    for held in folds(speakers):
        train = [r for r in records if r.speaker not in held]
        test = [r for r in records if r.speaker in held]
        fitted = fit_params(train, start)
        for r in test:
            truth.append(CLASSES.index(r.label))
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


def fit_pack(evaluation: Path, pack: Path, out: Path, key: Path, margin: float = 0.02) -> Outcome:
    """Fit from ``evaluation``, and write ``pack`` with the fitted calibration as ``out``, signed.

    Raises:
        FitRefusedError: held-out UAR did not improve by ``margin`` (nothing written).
        ExportError: unreadable input, ``out`` exists, or signing failed.
    """
    from contract.signing import SignatureError, sign_file  # noqa: PLC0415

    if out.exists():
        raise ExportError(f"{out} exists: fit writes a new pack folder")
    records, body = read_evaluation(evaluation)
    start = start_params(body)
    outcome = cross_validate(records, start)
    logger.info(
        "held-out UAR %.3f -> %.3f over %d clips of %d speakers (learned: %s)",
        outcome.before,
        outcome.after,
        outcome.clips,
        len(outcome.speakers),
        ", ".join(outcome.learned) or "nothing",
    )
    if outcome.after < outcome.before + margin:
        raise FitRefusedError(
            f"held-out UAR {100 * outcome.before:.1f} % -> {100 * outcome.after:.1f} % does not improve by "
            f"{100 * margin:.1f} points: nothing written (the room's current fusion stays)"
        )
    index = read_index(pack)
    p = outcome.params
    calibration = FusionCalibration(
        weights=p.weights,
        channel_temperatures=p.temperatures,
        temperature=p.fused_temperature,
        voice_tempering=p.tempering,
        disparity_threshold=None,
        speakers=outcome.speakers,
        fitted=FitEvidence(
            held_out_uar_before=round(outcome.before, 4),
            held_out_uar_after=round(outcome.after, 4),
            clips=outcome.clips,
            speakers=len(outcome.speakers),
            learned=outcome.learned,
            protocol=f"leave-speakers-out, {len(folds(list(outcome.speakers)))} folds, clip-level UAR",
            corpora=tuple(sorted({r.corpus for r in records})),
            margin=margin,
        ),
    )
    shutil.copytree(pack, out, symlinks=True)
    (out / "pack.json.sig").unlink(missing_ok=True)
    write_index(out, index.model_copy(update={"calibration": calibration}))
    try:
        sign_file(out / "pack.json", key)
    except SignatureError as exc:
        raise ExportError(f"the fitted pack {out} could not be signed: {exc}") from None
    return outcome
