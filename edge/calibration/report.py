"""The calibration report: one self-contained HTML file for the clinic's records.

Plots are drawn with matplotlib and embedded as PNG. A preview frame of the room is included only
when the technician asked for it (``--save-preview``); the report says whether it was.
"""

from __future__ import annotations

import html
from pathlib import Path

import cv2
import matplotlib as mpl
import numpy as np
import numpy.typing as npt

from edge.calibration.checks import FRAME_S, _levels, verdict
from edge.calibration.measure import Measurements
from edge.config.profile import RoomProfile
from edge.report.plots import figure_png

mpl.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

COLOURS = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "skip": "#757575"}


def _plots(m: Measurements) -> str:
    fig, axes = plt.subplots(3, 1, figsize=(8, 7.5))
    t = np.arange(len(m.frames)) / max(1e-6, len(m.frames) / max(m.duration_s, 1e-6))
    luma = [f.face_luma if f.face_luma is not None else np.nan for f in m.frames]
    width = [f.face_width_px if f.face_width_px is not None else np.nan for f in m.frames]
    axes[0].plot(t, luma, color="#1565c0")
    axes[0].axhspan(70, 190, color="#2e7d32", alpha=0.12, label="pass range")
    axes[0].set(title="Face brightness", ylabel="grey level", ylim=(0, 255))
    axes[0].legend(loc="lower right")
    axes[1].plot(t, width, color="#1565c0")
    axes[1].axhline(96, color="#2e7d32", linestyle="--", label="96 px")
    axes[1].axhline(64, color="#c62828", linestyle=":", label="64 px")
    axes[1].set(title="Face width", ylabel="pixels")
    axes[1].legend(loc="lower right")
    if m.has_audio and m.audio.shape[0] >= m.audio_rate:
        levels: npt.NDArray[np.float64] = _levels(m.audio, m.audio_rate)
        axes[2].plot(np.arange(levels.shape[0]) * FRAME_S, np.maximum(levels, -100), color="#6a1b9a")
        axes[2].axhline(float(np.percentile(levels, 10)), color="#757575", linestyle="--", label="noise floor")
        axes[2].axhspan(-30, -10, color="#2e7d32", alpha=0.12, label="speech pass range")
        axes[2].legend(loc="lower right")
    axes[2].set(title="Microphone level", ylabel="dBFS", xlabel="seconds")
    fig.tight_layout()
    return figure_png(fig)


def blurred(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The picture with no person recognisable in it: shrunk to a few dozen pixels and blurred."""
    h, w = rgb.shape[:2]
    tiny = cv2.resize(rgb, (max(1, w // 24), max(1, h // 24)), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(cv2.resize(tiny, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 6), np.uint8)


def write_report(
    path: Path,
    profile: RoomProfile,
    m: Measurements,
    elapsed_s: float,
    preview: npt.NDArray[np.uint8] | None,
    *,
    preview_asked: bool = False,
) -> Path:
    """The report; ``preview`` is shown as a photo when ``preview_asked`` (the technician ticked it),
    else blurred past recognition (the room's layout and the region, never a person)."""
    result = verdict(profile.checks)
    rows = "\n".join(
        f"<tr><td><b style='color:{COLOURS[c.status]}'>{c.status.upper()}</b></td><td>{html.escape(c.name)}: "
        f"{html.escape(c.plain)}</td>"
        f"<td>{'' if c.value is None else f'{c.value:g} {html.escape(c.unit)}'}</td>"
        f"<td>{html.escape(c.threshold)}</td><td>{html.escape(c.action)}</td></tr>"
        for c in profile.checks
    )
    region = profile.client_region
    preview_html = "<p>Preview frame: <b>not saved</b> (no frame arrived during the check).</p>"
    if preview is not None:
        shown = preview if preview_asked else blurred(preview)
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.imshow(shown)
        h, w = preview.shape[:2]
        ax.add_patch(Rectangle((region.x * w, region.y * h), region.w * w, region.h * h, fill=False, ec="yellow", lw=2))
        ax.set_axis_off()
        where = (
            f"the yellow box is the client region{'' if m.preview_has_face else ', which held no face in any frame'}"
        )
        kind = (
            "<b>saved</b> as a photo at the technician's request"
            if preview_asked
            else "<b>blurred</b> past recognition (the photo only when the technician asks for it)"
        )
        preview_html = (
            f"<p>Preview frame: {kind}; {where}.</p><img alt='preview' src='data:image/png;base64,{figure_png(fig)}'>"
        )
    counts = {s: sum(c.status == s for c in profile.checks) for s in ("pass", "warn", "fail")}
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Room calibration {html.escape(profile.created_at)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:6px;text-align:left;vertical-align:top}}
th{{background:#f5f5f5}}
</style></head><body>
<h1>Room calibration</h1>
<p>{html.escape(profile.created_at)} &middot; technician <b>{html.escape(profile.technician)}</b> &middot;
source {html.escape(profile.source)} &middot; {elapsed_s:.0f} s, {len(m.frames)} frames</p>
<p>Note: {html.escape(profile.note) or "(none)"}</p>
<p>Client region: x {region.x:g}, y {region.y:g}, width {region.w:g}, height {region.h:g} (fractions of the frame).
Suggested microphone gain change: {profile.microphone_gain_db:+.0f} dB.</p>
<h2 id="verdict">Verdict: {html.escape(result.text)}</h2>
<h2>Checks: {counts["pass"]} pass, {counts["warn"]} warn, {counts["fail"]} fail</h2>
<table><tr><th>result</th><th>check</th><th>measured</th><th>threshold</th><th>action</th></tr>
{rows}
</table>
<h2>Measurements over time</h2>
<img alt="plots" src="data:image/png;base64,{_plots(m)}">
<h2>Preview</h2>
{preview_html}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path
