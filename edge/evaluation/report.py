"""Scores from clip records, written as ``evaluation.json`` (for programs: per predictor the confusion
matrix in the product's class order, rows = truth, and ``n_clips``), ``evaluation.md`` (for a person)
and ``evaluation.html`` (with the confusion matrices and reliability diagrams drawn).

Predictors are each voting channel and the fused result (:mod:`clinic_signals.clips` aggregates a
clip's windows). A channel's abstentions are coverage only; the fused result's are coverage and
errors. The words channel is *not applicable* on clips whose sentences are fixed and neutral by design
(RAVDESS, CREMA-D): it is scored only where ``words_applicable``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinic_signals.clips import FUSED, clip_prediction
from clinic_signals.moments import moments
from clinic_signals.scores import Scores, score
from contract.classes import CLASSES, affect_of
from contract.evaluation import ClipRecord

# What the research this product grew from reports, and how its protocol differs from this one.
PUBLISHED = (
    (
        "Face + speech fusion, Grad-CAM/LIME explanations",
        "RAVDESS, 8 classes",
        "69-70 % accuracy",
        "models trained on RAVDESS itself (speaker-independent split), whole clips, faces cropped offline",
    ),
    (
        "Hybrid fusion (ParallelNet) with Shapley maps",
        "RAVDESS, 8 classes",
        "83.3 % accuracy",
        "trained and tested on RAVDESS, whole clips",
    ),
    (
        "Multimodal emotion recognition",
        "IEMOCAP, 4 classes",
        "54.6 %",
        "IEMOCAP's dyadic sessions and label set (not in this tool's corpora)",
    ),
)
PROTOCOL = (
    "Each clip runs through the room's own pipeline at the room's config, as one session from its file "
    "(capture, face region, speaker attribution, every channel, fusion, disparity). A clip's prediction per "
    "channel is the top class of the mean of the channel's distributions over its good windows; the fused "
    "prediction is the top class of the mean fused distribution over the windows that have one. The room's "
    "models were not trained on these corpora (unless the pack's card says so), so these are cross-corpus "
    "figures, unlike the published ones beside them."
)


def _words_scope(records: Sequence[ClipRecord], predictor: str) -> list[ClipRecord]:
    # A judged moment that names no class labels the disparity, not the emotion: not scored here.
    return [r for r in records if r.label is not None and (predictor != "words" or r.words_applicable)]


def disparity_scores(records: Sequence[ClipRecord], threshold: float, min_duration_s: float) -> dict[str, Any] | None:
    """How the disparity rule did on clips whose truth is known (acted corpora: none; a clinician's
    judged moments, a manifest's ``disparate`` column): moments found on congruent clips (false, and
    per hour of them), and the share of truly disparate clips where the rule found one."""
    known = [r for r in records if r.disparate is not None and not r.error]
    if not known:
        return None
    found = {
        r.clip_id: moments(((w.start_s, w.end_s, w.disparity) for w in r.windows), threshold, min_duration_s)
        for r in known
    }
    congruent = [r for r in known if not r.disparate]
    disparate = [r for r in known if r.disparate]
    hours = sum(max((w.end_s for w in r.windows), default=0.0) for r in congruent) / 3600
    false = sum(found[r.clip_id] for r in congruent)
    hit = sum(1 for r in disparate if found[r.clip_id])
    return {
        "threshold": threshold,
        "min_duration_s": min_duration_s,
        "congruent_clips": len(congruent),
        "congruent_clips_with_a_moment": sum(1 for r in congruent if found[r.clip_id]),
        "false_moments": false,
        "false_moments_per_hour": round(false / hours, 2) if hours > 0 else None,
        "disparate_clips": len(disparate),
        "disparate_clips_found": hit,
        "recall": round(hit / len(disparate), 4) if disparate else None,
    }


def score_predictor(records: Sequence[ClipRecord], predictor: str, *, seed: int = 0) -> Scores | None:
    """Scores of one predictor over the clips it applies to (None: it applies to none)."""
    scoped = _words_scope(records, predictor)
    if not scoped:
        return None
    truth, predicted, confidence, valence, arousal = [], [], [], [], []
    for r in scoped:
        truth.append(CLASSES.index(r.label))
        found = clip_prediction(r.windows, predictor)
        predicted.append(None if found is None else found[0])
        confidence.append(None if found is None else found[1])
        place = None
        if predictor == FUSED and found is not None:
            means = [w.fused for w in r.windows if w.fused is not None]
            place = affect_of(tuple(sum(col) / len(means) for col in zip(*means, strict=True)))
        valence.append(None if place is None else place[0])
        arousal.append(None if place is None else place[1])
    continuous: dict[str, tuple[Sequence[float | None], Sequence[float | None]]] = {
        "valence": ([r.valence for r in scoped], valence),
        "arousal": ([r.arousal for r in scoped], arousal),
    }
    return score(
        truth,
        predicted,
        [r.speaker for r in scoped],
        confidence,
        abstain_is_error=predictor == FUSED,
        continuous=continuous if predictor == FUSED else None,
        seed=seed,
    )


def predictors(records: Sequence[ClipRecord]) -> list[str]:
    # A channel that ran (its votes have a quality) is scored, whether or not it ever gave a result.
    names = sorted({v.name for r in records for w in r.windows for v in w.votes if v.quality})
    return [FUSED, *names]


def evaluation(records: Sequence[ClipRecord], room: dict[str, Any], warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Everything ``evaluation.json`` holds."""
    body: dict[str, Any] = {
        "classes": list(CLASSES),
        "protocol": PROTOCOL,
        "room": room,
        "clips": len(records),
        "failed": sum(1 for r in records if r.error),
        "failed_clips": [{"clip": r.clip_id, "why": r.error} for r in records if r.error],
        "corpora": dict(Counter(r.corpus for r in records)),
        "speakers": len({r.speaker for r in records}),
        "seconds_per_clip": statistics.median([r.seconds for r in records]) if records else None,
        "warnings": list(warnings),
        "predictors": {},
        "by_corpus": {},
    }
    rule = room.get("disparity", {})
    if rule.get("enabled", True) and "threshold" in rule:
        body["disparity"] = disparity_scores(records, float(rule["threshold"]), float(rule.get("min_duration_s", 0.0)))
    for name in predictors(records):
        found = score_predictor(records, name)
        body["predictors"][name] = (
            found.as_dict()
            if found is not None
            else {"not_applicable": True, "n_clips": 0, "why": "fixed, neutral sentences carry no words signal"}
        )
    for corpus in sorted({r.corpus for r in records}):
        subset = [r for r in records if r.corpus == corpus]
        body["by_corpus"][corpus] = {}
        for name in predictors(subset):
            found = score_predictor(subset, name)
            body["by_corpus"][corpus][name] = (
                {"not_applicable": True}
                if found is None
                else {k: v for k, v in found.as_dict().items() if k != "reliability"}
            )
    return body


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f} %"  # noqa: PLR0124 - NaN


def _interval(scores: dict[str, Any], key: str) -> str:
    low_high = scores.get("intervals", {}).get(key)
    return f" ({_pct(low_high[0])}-{_pct(low_high[1])})" if low_high else ""


def _by_corpus(body: dict[str, Any]) -> list[str]:
    lines = ["", "## By corpus (accuracy / UAR / coverage)", ""]
    names = list(body["predictors"])
    lines += ["| corpus | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for corpus, per in body["by_corpus"].items():
        cells = []
        for name in names:
            s = per.get(name)
            if s is None:
                cells.append("-")
            elif s.get("not_applicable"):
                cells.append("not applicable (fixed sentences)")
            else:
                cells.append(f"{_pct(s['accuracy'])} / {_pct(s['uar'])} / {_pct(s['coverage'])}")
        lines.append(f"| {corpus} | " + " | ".join(cells) + " |")
    return lines


def _disparity(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return []
    lines = [
        "",
        f"## Disparity moments (threshold {d['threshold']}, at least {d['min_duration_s']} s)",
        "",
        f"- Congruent clips (acted corpora: face and voice show one emotion; or judged so): {d['congruent_clips']}, "
        f"{d['congruent_clips_with_a_moment']} with a moment; {d['false_moments']} false moments"
        + (f" ({d['false_moments_per_hour']} per hour)" if d["false_moments_per_hour"] is not None else "")
        + ".",
    ]
    if d["disparate_clips"]:
        lines.append(
            f"- Truly disparate clips (clinicians' moments, a manifest's column): {d['disparate_clips']}, "
            f"the rule found {d['disparate_clips_found']} ({_pct(d['recall'])})."
        )
    else:
        lines.append("- No clip known to hold a disparity: how many real ones the rule finds is not measured here.")
    return lines


def markdown(body: dict[str, Any]) -> str:
    lines = [
        "# How right is the room",
        "",
        f"{body['clips']} clips ({', '.join(f'{k}: {v}' for k, v in body['corpora'].items())}), "
        f"{body['speakers']} speakers; {body['failed']} could not be analysed (counted as no result).",
        "",
        body["protocol"],
        "",
        "| predictor | clips | coverage | accuracy (95 % by speaker) | UAR | macro-F1 | kappa | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in body["predictors"].items():
        if s.get("not_applicable"):
            lines.append(f"| {name} | - | not applicable: {s['why']} | | | | | |")
            continue
        ece = "n/a" if s["ece"] is None else f"{s['ece']:.3f}"
        lines.append(
            f"| {name} | {s['n_clips']} | {_pct(s['coverage'])} | {_pct(s['accuracy'])}{_interval(s, 'accuracy')} | "
            f"{_pct(s['uar'])}{_interval(s, 'uar')} | {_pct(s['macro_f1'])} | {s['kappa']:.2f} | {ece} |"
        )
    lines += _by_corpus(body)
    fused = body["predictors"].get(FUSED, {})
    if fused.get("ccc"):
        lines += [
            "",
            "Concordance with the labels' valence and arousal (fused): "
            + ", ".join(f"{k} {v:.2f}" for k, v in fused["ccc"].items()),
        ]
    lines += [
        "",
        "Accuracy and UAR of the fused result count its abstentions as errors; a channel's are over the clips "
        "it gave a result for (its coverage).",
        "",
        "## Fused confusion (rows: truth, columns: the room's answer)",
        "",
        "| truth \\ room | " + " | ".join(CLASSES) + " | no result |",
        "| --- |" + " --- |" * (len(CLASSES) + 1),
    ]
    if "confusion" in fused:
        for i, row in enumerate(fused["confusion"]):
            lines.append(f"| {CLASSES[i]} | " + " | ".join(str(v) for v in row) + f" | {fused['abstained'][i]} |")
    lines += _disparity(body.get("disparity"))
    lines += [
        "",
        "## Beside the published figures",
        "",
        "| work | data | reported | how its protocol differs |",
        "| --- | --- | --- | --- |",
        *(f"| {w} | {d} | {r} | {p} |" for w, d, r, p in PUBLISHED),
    ]
    if body["failed_clips"]:
        lines += ["", "## Clips the room could not analyse", ""]
        lines += [f"- {f['clip']}: {f['why']}" for f in body["failed_clips"][:10]]
        if len(body["failed_clips"]) > 10:
            lines.append(f"- ... and {len(body['failed_clips']) - 10} more (evaluation.json lists them)")
    if body["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in body["warnings"])]
    return "\n".join(lines) + "\n"


def _figure(scores: dict[str, Any], name: str) -> str:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    matrix = scores["confusion"]
    left.imshow(matrix, cmap="Blues")
    left.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right", fontsize=8)
    left.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    left.set_xlabel("the room's answer")
    left.set_ylabel("truth")
    left.set_title(f"{name}: confusion")
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v:
                left.text(j, i, str(v), ha="center", va="center", fontsize=7)
    bins = scores["reliability"]
    right.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1)
    if bins:
        right.bar(
            [b["confidence"] for b in bins], [b["accuracy"] for b in bins], width=0.05, color="#4c72b0", alpha=0.8
        )
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_xlabel("confidence")
    right.set_ylabel("accuracy")
    ece = scores["ece"]
    right.set_title(f"reliability (ECE {'n/a' if ece is None else f'{ece:.3f}'})")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def html_page(body: dict[str, Any], md: str) -> str:
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>How right is the room</title>",
        "<body style='font-family: sans-serif; max-width: 60rem; margin: 2rem auto'>",
        f"<pre style='white-space: pre-wrap'>{html.escape(md)}</pre>",
    ]
    for name, s in body["predictors"].items():
        if s.get("not_applicable") or not s.get("n_clips"):
            continue
        parts.append(
            f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}: confusion and reliability' "
            f"src='data:image/png;base64,{_figure(s, name)}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write(out: Path, body: dict[str, Any]) -> list[Path]:
    md = markdown(body)
    paths = [out / "evaluation.json", out / "evaluation.md", out / "evaluation.html"]
    paths[0].write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    paths[1].write_text(md, encoding="utf-8")
    paths[2].write_text(html_page(body, md), encoding="utf-8")
    return paths
