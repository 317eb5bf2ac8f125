"""The report's pictures, drawn with matplotlib and embedded as PNG (never a picture of the client:
face maps are drawn over a neutral outline)."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib as mpl
import numpy as np
import numpy.typing as npt

from contract.classes import CLASS_COLOURS, CLASSES
from edge.report.data import SessionData
from edge.report.figures import SessionFigures

mpl.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse


def figure_png(fig: Any) -> str:
    """The figure as base64 PNG (closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


# Sessions longer than this are drawn per minute (the windows' mean distribution in each minute):
# one point per window would be a pixel each.
PER_WINDOW_UP_TO_S = 600.0
Floats = npt.NDArray[np.float64]


def _binned(session: SessionData, name: str, width: float) -> tuple[list[float], list[Floats], list[bool]]:
    """Per bin of ``width`` seconds (or per window when ``width`` is 0): centre, mean distribution of
    the row's windows, and whether most fused windows there were uncertain."""
    groups: dict[int, list[tuple[Floats, bool]]] = {}
    centres: dict[int, float] = {}
    for k, w in enumerate(session.windows):
        probs = w.probs if name == "fused" else getattr(w.channels.get(name), "probs", None)
        if not probs:
            continue
        key = int(w.start_s // width) if width else k
        groups.setdefault(key, []).append((np.asarray(probs, dtype=np.float64), w.state == "uncertain"))
        centres[key] = (key + 0.5) * width if width else (w.start_s + w.end_s) / 2
    keys = sorted(groups)
    means = [np.mean([p for p, _ in groups[k]], axis=0) for k in keys]
    uncertain = [name == "fused" and 2 * sum(u for _, u in groups[k]) > len(groups[k]) for k in keys]
    return [centres[k] for k in keys], means, uncertain


def timeline(session: SessionData, voters: tuple[str, ...]) -> str:
    """The fused result and each voting channel's, per window (per minute for a long session); the
    voice's arousal and the disparity (per minute: the mean arousal and the peak disparity)."""
    rows = ("fused", *voters)
    end = max((w.end_s for w in session.windows), default=0.0)
    width = 60.0 if end > PER_WINDOW_UP_TO_S else 0.0
    scale = 60.0 if width else 1.0  # minutes on a long session's axis
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, height_ratios=(3, 2))
    for event in session.events:
        for ax in (top, bottom):
            ax.axvspan(event.start_s / scale, event.end_s / scale, color="#ffcdd2", alpha=0.6, lw=0)
    for row, name in enumerate(rows):
        y = len(rows) - 1 - row
        x, means, uncertain = _binned(session, name, width)
        sure = [k for k, u in enumerate(uncertain) if not u]
        if sure:
            best = [int(np.argmax(means[k])) for k in sure]
            top.scatter(
                [x[k] / scale for k in sure],
                [y] * len(sure),
                c=[CLASS_COLOURS[CLASSES[b]] for b in best],
                s=[20 + 120 * float(means[k][b]) for k, b in zip(sure, best, strict=True)],
                lw=0,
            )
        unsure = [x[k] / scale for k, u in enumerate(uncertain) if u]
        if unsure:
            top.scatter(unsure, [y] * len(unsure), marker="x", color="#616161", s=30)
    top.set_yticks(range(len(rows)), list(reversed(rows)))
    top.set_ylim(-0.6, len(rows) - 0.4)
    top.set_title(
        "Emotion per channel"
        + (" per minute" if width else "")
        + " (colour: class; size: probability; x: uncertain; red: disagreement)"
    )
    handles = [Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in CLASS_COLOURS.items()]
    top.legend(handles=handles, ncol=8, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), frameon=False)
    t = np.asarray([(w.start_s + w.end_s) / 2 for w in session.windows], dtype=np.float64)
    arousal = np.asarray(
        [w.voice.arousal if w.voice is not None and w.voice.arousal is not None else np.nan for w in session.windows],
        dtype=np.float64,
    )
    score = np.asarray([w.disparity if w.disparity is not None else np.nan for w in session.windows], dtype=np.float64)
    if width and len(t):
        bins = (t // width).astype(int)
        keys = np.unique(bins)
        t = (keys + 0.5) * width
        arousal = np.asarray([_nan(np.nanmean, arousal[bins == k]) for k in keys])
        score = np.asarray([_nan(np.nanmax, score[bins == k]) for k in keys])
    bottom.plot(
        t / scale, arousal, color="#6a1b9a", label="voice arousal (vs own baseline)" + (", mean" if width else "")
    )
    bottom.plot(t / scale, score, color="#c62828", label="disparity score" + (", peak" if width else ""))
    bottom.axhline(0, color="#bdbdbd", lw=0.8)
    bottom.set(
        ylim=(-1.05, 1.05), xlabel="minutes since the session started" if width else "seconds since the session started"
    )
    bottom.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


def _nan(reduce: Any, values: Floats) -> float:
    """``reduce`` of the values that are numbers; NaN (a gap in the line) when none is."""
    kept = values[~np.isnan(values)]
    return float(reduce(kept)) if kept.size else float("nan")


def contributions(f: SessionFigures, channels: tuple[str, ...]) -> str:
    x = np.arange(len(channels))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(x - 0.2, [f.contributions.get(c, 0.0) for c in channels], 0.4, label="mean Shapley value", color="#1565c0")
    ax.bar(x + 0.2, [f.permutation.get(c, 0.0) for c in channels], 0.4, label="permutation importance", color="#ef6c00")
    ax.set_xticks(x, channels)
    ax.axhline(0, color="#bdbdbd", lw=0.8)
    ax.set_title("What the results rested on")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def coverage(f: SessionFigures) -> str:
    names = list(f.coverage)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh(names, [f.coverage[n].present for n in names], color="#bbdefb", label="present")
    ax.barh(names, [f.coverage[n].good for n in names], color="#1565c0", label="good quality")
    ax.set(xlim=(0, 1), xlabel="share of windows", title="Coverage per channel")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


def face_map(grid: list[list[float]] | None, regions: dict[str, float] | None) -> str:
    """The mean occlusion map over a neutral face outline in the aligned crop's geometry."""
    fig, ax = plt.subplots(figsize=(3.6, 4))
    if grid is not None:
        data = np.maximum(np.asarray(grid, dtype=np.float64), 0.0)
        ax.imshow(data, extent=(0, 1, 1, 0), cmap="Reds", alpha=0.75, vmin=0, vmax=max(float(data.max()), 1e-6))
    ax.add_patch(Ellipse((0.5, 0.55), 0.7, 0.9, fill=False, lw=2, color="#424242"))
    for x in (0.3, 0.68):
        ax.add_patch(Ellipse((x, 0.375), 0.14, 0.06, fill=False, lw=1.5, color="#424242"))
        ax.plot([x - 0.09, x + 0.09], [0.29, 0.28], color="#424242", lw=2)
    ax.plot([0.49, 0.45, 0.52], [0.42, 0.6, 0.62], color="#424242", lw=1.5)
    ax.plot([0.37, 0.61], [0.74, 0.74], color="#424242", lw=2)  # a neutral mouth
    ax.set(xlim=(0, 1), ylim=(1, 0), xticks=[], yticks=[])
    title = "Where the face result came from"
    if regions:
        top = sorted(regions.items(), key=lambda kv: -kv[1])[:3]
        title += "\n" + ", ".join(f"{k} {100 * v:.0f} %" for k, v in top)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)
