"""The session report as HTML: its sections (shared with the review page) and the self-contained
file. Printing is :mod:`edge.report.pdf`, writing the files :mod:`edge.report.files`, the fusion the
figures replay :mod:`edge.report.fusion`."""

from __future__ import annotations

import html
import logging
from typing import Any

import numpy as np

from edge import __version__
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.report import plots
from edge.report.data import SessionData
from edge.report.figures import clock, summary_sentences
from edge.report.fusion import session_figures

logger = logging.getLogger(__name__)

LIMITS = (
    "This report describes expressions, voice and words as measured by models; it does not diagnose, "
    "and it does not measure what the client feels. Use it alongside clinical judgement, never instead of it.",
    "The face model was trained on posed and web photographs (FER2013): it recognises seven expressions "
    "(no 'calm') and is less reliable for faces turned away, poorly lit, small, or from groups under-represented "
    "in its data.",
    "The voice's arousal and valence are interpretable acoustic cues against the client's own baseline in this "
    "session; valence from the voice alone is weak evidence. A trained speech model is used only when the model "
    "pack carries one.",
    "Text emotion is zero-shot similarity to prototype sentences: it misses negation, sarcasm and context, and "
    "depends on the transcript, which can be wrong (especially for accented or quiet speech).",
    "The camera pulse is a research measurement, easily disturbed by movement and light; it is not a medical reading.",
    "Disparity means the channels pointed in opposite directions for a while; it is a prompt for attention, "
    "not a finding.",
)
# The report's look, in the HTML file and on the review page (served there as a style sheet).
REPORT_CSS = """body { font-family: "DejaVu Sans", sans-serif; max-width: 60rem; margin: 2rem auto; color: #212121; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #e0e0e0; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #e0e0e0; padding: 0.25rem 0.6rem; }
.muted { color: #757575; } .notice { background: #fff8e1; border-left: 4px solid #ef6c00; padding: 0.6rem 1rem; }
img { max-width: 100%; } .row { display: flex; gap: 1rem; flex-wrap: wrap; align-items: flex-start; }
@media print { h2 { break-after: avoid; } img { break-inside: avoid; } }
"""


def _explained(session: SessionData, channel: str, key: str) -> list[Any]:
    """One part of the explained windows' explanations (where the channel explained the window)."""
    return [v for w in session.windows if (v := w.explained(channel, key))]


def _channel_sections(session: SessionData, registry: ChannelRegistry) -> str:
    """Each channel's own part of the explanations (:meth:`Channel.report_section`), in registry order."""
    parts = []
    for channel in registry:
        mine = [e for w in session.windows if w.explanation and (e := w.explanation["channels"].get(channel.name))]
        section = channel.report_section(mine)
        if section:
            parts.append(f'<div class="channel-section" id="explained-{html.escape(channel.name)}">{section}</div>')
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _moments(session: SessionData) -> str:
    if not session.events:
        return "<p>None: face, voice and words never disagreed for long in this session.</p>"
    rows = []
    for e in session.events:
        said = [u for u in session.transcript if u.start_s < e.end_s and u.end_s > e.start_s]
        words = " / ".join(html.escape(f"{u.text} [{u.label}]") for u in said) if said else "&ndash;"
        rows.append(
            [
                f"{clock(e.start_s)}&ndash;{clock(e.end_s)}",
                f"{e.end_s - e.start_s:.0f} s",
                f"the {html.escape(e.channels[0])} and the {html.escape(e.channels[1])}",
                f"{e.peak:.2f}",
                words,
            ]
        )
    note = "" if session.transcript else "<p class='muted'>Transcripts are not stored in this room.</p>"
    return _table(["when", "for how long", "which disagreed", "how strongly (0 to 1)", "what was said"], rows) + note


def _words_section(session: SessionData) -> str:
    explained = _explained(session, "words", "words")
    if not explained:
        return "<p class='muted'>No word importances (the words channel is off or transcripts are not stored).</p>"
    weights: dict[str, list[float]] = {}
    for words in explained:
        for word, value in words:
            weights.setdefault(str(word).lower().strip(".,!?"), []).append(float(value))
    top = sorted(((w, float(np.mean(v))) for w, v in weights.items()), key=lambda kv: -abs(kv[1]))[:12]
    return _table(["word", "mean importance"], [[html.escape(w), f"{v:+.3f}"] for w, v in top])


def report_body(
    session: SessionData, config: AppConfig, registry: ChannelRegistry | None = None, *, technical_open: bool = True
) -> str:
    """The report of ``session`` (its sections, without the page around them); ``registry`` (the
    product's channels by default) says which channels are covered, fused and shown. A therapist's
    summary and the moments come first; the models' internals are under "Technical details" (open
    in a printed report, folded on the review page: ``technical_open``)."""
    registry = registry if registry is not None else default_registry()
    f, method = session_figures(session, config, registry)
    grids = _explained(session, "face", "map")
    mean_grid = np.mean(np.asarray(grids, dtype=np.float64), axis=0).tolist() if grids else None
    voice = _explained(session, "voice", "segments")
    summary = "".join(f"<li>{html.escape(s)}</li>" for s in summary_sentences(session, f))
    coverage_rows = [
        [html.escape(c), f"{100 * v.present:.0f} %", f"{100 * v.good:.0f} %"] for c, v in f.coverage.items()
    ]
    voice_note = "<p class='muted'>No voice explanations in this session.</p>"
    if voice:
        length = min(len(v) for v in voice)
        mean = np.mean(np.asarray([v[:length] for v in voice], dtype=np.float64), axis=0)
        voice_note = (
            f"<p>Voice: importance of each half-second of a window, averaged over {len(voice)} explained "
            f"windows: {', '.join(f'{v:.2f}' for v in mean)}.</p>"
        )
    limits = "".join(f"<li>{html.escape(s)}</li>" for s in LIMITS)
    crashed = (
        "<p class='notice' id='ended-by-crash'>This session did not end normally (the appliance stopped or "
        "crashed); it is shown up to its last stored window, and what was being analysed then is missing.</p>"
        if session.ended_by == "crash"
        else ""
    )
    voters = tuple(c.name for c in registry.voters)
    title = report_title(session)
    folded = " open" if technical_open else ""
    return f"""<h1>{html.escape(title)}</h1>
<p class="notice" id="not-a-diagnosis"><b>Not a diagnosis.</b> {html.escape(LIMITS[0])}</p>
{crashed}<h2 id="summary">Summary</h2><ul>{summary}</ul>
<h2 id="disparity">Moments when face, voice and words disagreed</h2>{_moments(session)}
<h2 id="timeline">Timeline</h2>{plots_timeline(session, voters)}
<h2 id="limits">What these results cannot tell</h2><ul>{limits}</ul>
<details id="technical"{folded}><summary>Technical details (how the models reached these results)</summary>
<p class="muted">Room {html.escape(session.site)}/{html.escape(session.room)} &middot; device
{html.escape(session.device_id)} &middot; session {html.escape(session.id)} &middot; consent
{html.escape(session.consent_method or "not recorded")} &middot; backend {html.escape(session.backend or "?")}
&middot; fusion {html.escape(method)} &middot; clinic-edge {__version__}</p>
<h2 id="contributions">Contributions</h2>
<p>Shapley value: how much each channel moved a window's result above chance, averaged over the windows that
used it. Permutation importance: the share of windows whose result changes when that channel's results are
shuffled across the session.</p>
<div class="row">{_img(plots.contributions(f, voters), "contributions per channel")}</div>
<h2 id="explanations">Explanations</h2>
<p>{f.explained} window(s) were explained (setting
<code>explain.when = "{html.escape(config.explain.when)}"</code>).</p>
<div class="row">{_img(plots.face_map(mean_grid, f.face_regions), "face regions over a neutral outline")}
<div>{voice_note}<h3>Words</h3>{_words_section(session)}</div></div>
{_channel_sections(session, registry)}
<h2 id="coverage">Coverage</h2>
<div class="row">{_img(plots.coverage(f), "coverage per channel")}
{_table(["channel", "present", "good quality"], coverage_rows)}</div>
</details>
"""


def report_title(session: SessionData) -> str:
    return f"Session report {session.started_at[:16].replace('T', ' ')} UTC"


def render_html(session: SessionData, config: AppConfig, registry: ChannelRegistry | None = None) -> str:
    """The report of ``session`` as one self-contained HTML file."""
    body = report_body(session, config, registry)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report_title(session))}</title>
<style>
{REPORT_CSS}@page {{ size: {config.review.paper}; margin: 15mm; }}
</style></head><body>
{body}</body></html>
"""


def plots_timeline(session: SessionData, voters: tuple[str, ...]) -> str:
    if not session.windows:
        return "<p class='muted'>The session has no windows.</p>"
    return _img(plots.timeline(session, voters), "emotion timeline per channel")
