"""The report's pictures, drawn with matplotlib and embedded as PNG (never a picture of the client:
face maps are drawn over a neutral outline)."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib as mpl
import numpy as np

from contract.classes import CLASSES
from edge.report.analysis import SessionFigures
from edge.report.data import SessionData

mpl.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse

CLASS_COLOURS = {
    "neutral": "#9e9e9e",
    "calm": "#80cbc4",
    "happy": "#fbc02d",
    "sad": "#1565c0",
    "angry": "#c62828",
    "fearful": "#6a1b9a",
    "disgust": "#2e7d32",
    "surprised": "#ef6c00",
}


def figure_png(fig: Any) -> str:
    """The figure as base64 PNG (closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def timeline(session: SessionData, voters: tuple[str, ...]) -> str:
    """The fused result and each voting channel's, per window; the voice's arousal and the disparity."""
    rows = ("fused", *voters)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, height_ratios=(3, 2))
    for event in session.events:
        for ax in (top, bottom):
            ax.axvspan(event.start_s, event.end_s, color="#ffcdd2", alpha=0.6, lw=0)
    for row, name in enumerate(rows):
        y = len(rows) - 1 - row
        for w in session.windows:
            probs = w.probs if name == "fused" else getattr(w.channels.get(name), "probs", None)
            if not probs:
                continue
            best = int(np.argmax(probs))
            x = (w.start_s + w.end_s) / 2
            if name == "fused" and w.state == "uncertain":
                top.scatter(x, y, marker="x", color="#616161", s=30)
                continue
            top.scatter(x, y, color=CLASS_COLOURS[CLASSES[best]], s=20 + 120 * float(probs[best]), lw=0)
    top.set_yticks(range(len(rows)), list(reversed(rows)))
    top.set_ylim(-0.6, len(rows) - 0.4)
    top.set_title("Emotion per channel (colour: class; size: probability; x: uncertain; red: disagreement)")
    handles = [Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in CLASS_COLOURS.items()]
    top.legend(handles=handles, ncol=8, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), frameon=False)
    t = [(w.start_s + w.end_s) / 2 for w in session.windows]
    arousal = [
        w.voice.arousal if w.voice is not None and w.voice.arousal is not None else np.nan for w in session.windows
    ]
    score = [w.disparity if w.disparity is not None else np.nan for w in session.windows]
    bottom.plot(t, arousal, color="#6a1b9a", label="voice arousal (vs own baseline)")
    bottom.plot(t, score, color="#c62828", label="disparity score")
    bottom.axhline(0, color="#bdbdbd", lw=0.8)
    bottom.set(ylim=(-1.05, 1.05), xlabel="seconds since the session started")
    bottom.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


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
