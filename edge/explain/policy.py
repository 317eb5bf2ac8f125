"""Which windows are explained, and at what cost.

``explain.when``: ``every`` window; ``disagreement`` (the default): windows whose channels disagree
(disparity at or above its threshold) or whose result is ``mixed`` or ``uncertain``; ``request``:
only while a clinician asked for explanations (the ``explain`` command, for some seconds); ``off``.
Requests are honoured in every mode but ``off``. What an explanation holds is each channel's own
(:meth:`edge.channels.base.Channel.explainer`); each channel's cost is in the window's timing
(``explain_<channel>_ms``) and, between sessions, in ``clinic_edge_stage_recent_seconds``; how many
windows were explained, and why, is no metric (it would tell a session's facts to any scraper).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from edge.channels.base import ChannelExplainer, WindowContext
from edge.config.models import ExplainConfig
from edge.results import Disparity, Explanation


class Explainer:
    def __init__(
        self,
        config: ExplainConfig,
        explainers: Mapping[str, ChannelExplainer],
        *,
        disparity_threshold: float,
        requested: Callable[[float], bool] = lambda _t: False,
    ) -> None:
        self.config = config
        self.explainers = dict(explainers)  # by channel name, in the registry's order
        self.disparity_threshold = disparity_threshold
        self.requested = requested  # (window ready time, monotonic) -> asked for by a clinician

    def reason(self, *, state: str | None, disparity: Disparity | None, ready_monotonic: float) -> str | None:
        when = self.config.when
        if when == "off":
            return None
        if self.requested(ready_monotonic):
            return "request"
        if when == "every":
            return "every"
        disagree = disparity is not None and disparity.score >= self.disparity_threshold
        if when == "disagreement" and (disagree or state in ("mixed", "uncertain")):
            return "disagreement"
        return None

    def explain(self, reason: str, context: WindowContext, results: Mapping[str, Any]) -> Explanation:
        """Each channel's explanation of its result in the window (``results`` by channel name)."""
        parts: dict[str, dict[str, Any]] = {}
        costs: dict[str, float] = {}
        for name, explainer in self.explainers.items():
            t0 = time.perf_counter()
            part = explainer(context, results.get(name))
            costs[f"explain_{name}_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
            if part is not None:
                parts[name] = part
        return Explanation(reason=reason, channels=parts, cost_ms=costs)
