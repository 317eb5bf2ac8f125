"""Numbers behind the report: coverage, the session's emotions, contributions, permutation
importance, pulse, and the plain-language summary built from templates over them (nothing else)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from clinic_signals.fusion import WindowFusion
from edge.channels.registry import ChannelRegistry
from edge.report.data import SessionData, StoredWindow

PERMUTATIONS = 20
# A long session's permutation importance is estimated on this many of its windows (drawn evenly at
# random, seeded): the statistic is a share, so a sample of this size gives it to about +-3 points.
PERMUTATION_WINDOWS = 250


@dataclass(frozen=True)
class Coverage:
    present: float  # share of windows where the channel ran and had input
    good: float  # share where it was good (fusable, or a pulse number)


@dataclass(frozen=True)
class SessionFigures:
    duration_s: float
    windows: int
    coverage: dict[str, Coverage]
    labels: list[tuple[str, float]]  # (class, share of labelled windows), most frequent first
    uncertain: int
    mixed: int
    contributions: dict[str, float]  # mean Shapley value per channel over windows that fused it
    permutation: dict[str, float]  # drop in agreement with the session's fused labels when shuffled
    pulse_bpm: tuple[float, float, float] | None  # median, min, max over good windows
    face_regions: dict[str, float] | None  # mean share per region over explained windows
    explained: int


def permutation_importance(
    windows: list[StoredWindow], fusion: WindowFusion, registry: ChannelRegistry, seed: int = 0
) -> dict[str, float]:
    """For each channel, how much the fused labels change when that channel's distributions are
    shuffled across the session's windows (mean over ``PERMUTATIONS`` shuffles): 0 means the
    session's results did not depend on it. Sessions longer than ``PERMUTATION_WINDOWS`` windows are
    estimated on a seeded sample of that many."""
    rng = np.random.default_rng(seed)
    if len(windows) > PERMUTATION_WINDOWS:
        windows = [windows[k] for k in sorted(rng.choice(len(windows), PERMUTATION_WINDOWS, replace=False))]
    votes = [registry.votes(w.channels) for w in windows]
    reference = [fusion.top(v) for v in votes]
    out: dict[str, float] = {}
    for i, channel in enumerate(c.name for c in registry.voters):
        rows = [k for k, v in enumerate(votes) if v[i].probs is not None and v[i].quality == "good"]
        if len(rows) < 2 or not any(r is not None for r in reference):
            out[channel] = 0.0
            continue
        changed = []
        for _ in range(PERMUTATIONS):
            order = rng.permutation(rows)
            flips = 0
            for k, source in zip(rows, order, strict=True):
                shuffled = list(votes[k])
                shuffled[i] = votes[source][i]
                ref, new = reference[k], fusion.top(shuffled)
                flips += int(ref is not None and new is not None and ref != new)
            changed.append(flips / len(windows))
        out[channel] = round(float(np.mean(changed)), 4)
    return out


def figures(session: SessionData, fusion: WindowFusion, registry: ChannelRegistry) -> SessionFigures:
    ws = session.windows
    n = max(len(ws), 1)
    coverage = {
        c.name: Coverage(
            sum(c.present(w.channels.get(c.name)) for w in ws) / n, sum(c.good(w.channels.get(c.name)) for w in ws) / n
        )
        for c in registry
    }
    labelled = Counter(w.label for w in ws if w.label)
    total = sum(labelled.values())
    labels = [(k, v / total) for k, v in labelled.most_common()] if total else []
    shares: dict[str, list[float]] = {}
    for w in ws:
        for c, v in w.contributions.items():
            shares.setdefault(c, []).append(v)
    bpm = [w.pulse.bpm for w in ws if w.pulse is not None and w.pulse.bpm is not None and w.pulse.quality == "good"]
    explained = [w.explanation for w in ws if w.explanation]
    regions = [r for w in ws if (r := w.explained("face", "regions"))]
    mean_regions = {k: round(float(np.mean([r[k] for r in regions])), 3) for k in regions[0]} if regions else None
    return SessionFigures(
        duration_s=(ws[-1].end_s - ws[0].start_s) if ws else 0.0,
        windows=len(ws),
        coverage=coverage,
        labels=labels,
        uncertain=sum(w.state == "uncertain" for w in ws),
        mixed=sum(w.state == "mixed" for w in ws),
        contributions={c: round(float(np.mean(v)), 4) for c, v in shares.items()},
        permutation=permutation_importance(ws, fusion, registry),
        pulse_bpm=(float(np.median(bpm)), float(min(bpm)), float(max(bpm))) if bpm else None,
        face_regions=mean_regions,
        explained=len(explained),
    )


def clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m:02d}:{s:02d}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def summary_sentences(session: SessionData, f: SessionFigures) -> list[str]:
    """The plain-language summary: fixed templates filled with the numbers above."""
    out = [
        f"The session lasted {clock(f.duration_s)} (minutes:seconds) and was analysed in {f.windows} overlapping "
        f"windows{f' with {session.pauses} pause(s)' if session.pauses else ''}."
    ]
    none = Coverage(0.0, 0.0)
    seen = [
        f"the face in {_pct(f.coverage.get('face', none).good)}",
        f"the voice in {_pct(f.coverage.get('voice', none).present)}",
    ]
    if f.coverage.get("words", none).present:
        seen.append(f"speech was transcribed in {_pct(f.coverage['words'].present)}")
    if f.coverage.get("pulse", none).good:
        seen.append(f"a pulse could be read in {_pct(f.coverage['pulse'].good)}")
    others = [c for c in f.coverage if c not in ("face", "voice", "words", "pulse") and f.coverage[c].present]
    seen += [f"the {c} channel in {_pct(f.coverage[c].present)}" for c in others]
    out.append("Of the windows, " + ", ".join(seen) + ".")
    if f.labels:
        top = f.labels[0]
        text = f"The most frequent result was {top[0]} ({_pct(top[1])} of the windows with a result)"
        if len(f.labels) > 1:
            text += f", followed by {f.labels[1][0]} ({_pct(f.labels[1][1])})"
        out.append(text + ".")
    else:
        out.append("No window had a result: no channel was of good enough quality.")
    if f.uncertain or f.mixed:
        out.append(
            f"{f.uncertain} window(s) were left uncertain (below the confidence level) and {f.mixed} showed two "
            "emotions close together (mixed)."
        )
    if session.events:
        moments = ", ".join(
            f"{clock(e.start_s)}-{clock(e.end_s)} ({e.channels[0]} vs {e.channels[1]})" for e in session.events[:5]
        )
        out.append(f"The channels disagreed for a sustained time {len(session.events)} time(s): {moments}.")
    else:
        out.append("The face, voice and words did not disagree for a sustained time.")
    if f.contributions:
        lead = max(f.contributions, key=lambda c: f.contributions[c])
        out.append(f"The {lead} contributed most to the results on average (see Contributions).")
    if f.pulse_bpm:
        med, lo, hi = f.pulse_bpm
        out.append(f"The camera pulse estimate was {med:.0f} beats per minute (median; range {lo:.0f}-{hi:.0f}).")
    return out
