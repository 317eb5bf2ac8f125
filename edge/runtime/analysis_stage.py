"""The analysis stage: each completed window through the session's channels, fusion, disparity and
explanations (:class:`edge.analysis.summarize.WindowSummarizer`) into a :class:`WindowResult`, with
its costs in the metrics. Media ends here: what leaves is the typed result."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from edge.analysis.summarize import SessionChannels, SessionTail, WindowSummarizer
from edge.channels.registry import ChannelRegistry
from edge.config.models import AppConfig
from edge.metrics import Metrics
from edge.results import WindowInput, WindowResult

# Per-window costs (``<stage>_ms`` in a window's timing) exported as stage latencies, besides each
# channel's own (``Channel.stages``) and its explanation's (``explain_<channel>``).
WINDOW_STAGES_BEFORE = ("audio", "speakers")
WINDOW_STAGES_AFTER = ("fusion",)


class AnalysisStage:
    """One per session. The channels' state is made on the first window (``channels``), once the
    session's start time is known."""

    def __init__(
        self,
        config: AppConfig,
        *,
        session_id: str,
        session_start: datetime,
        metrics: Metrics,
        channels: Callable[[], SessionChannels],
        registry: ChannelRegistry,
    ) -> None:
        self.config = config
        self.session_id = session_id
        self.session_start = session_start
        self.metrics = metrics
        self.channels = channels
        explain = tuple(f"explain_{c.name}" for c in registry)
        self.stages = (*WINDOW_STAGES_BEFORE, *registry.stages(), *WINDOW_STAGES_AFTER, *explain)
        self._summarizer: WindowSummarizer | None = None
        self.utterances_skipped = 0  # speech left untranscribed because the device was behind
        self.explanations_shed = 0  # windows completed without their explanation: the device was behind
        self.quick_declined = 0  # quick passes of the words' quick start not taken: the device was busy
        # Transcript segments the guard refused this session, by reason (edge.transcribe.guard): in the
        # run report, not the metrics (a count per session would tell how the session sounded).
        self.words_refused: Counter[str] = Counter()
        self._refused_before: Counter[str] = Counter()

    def analyze(self, window: WindowInput) -> list[WindowResult]:
        """Analyse a window; returns the windows it completed (a window waits for its words)."""
        if self._summarizer is None:
            self._summarizer = WindowSummarizer(
                self.session_id, self.session_start, self.config.vision, self.config.audio, self.channels()
            )
            words = self._summarizer.channels.words
            if words is not None:  # the transcriber lives as long as the room: count from here
                self._refused_before = Counter(words.stream.transcriber.refused)
        t0 = time.perf_counter()
        results = self._summarizer.summarize(window)
        self.metrics.observe_stage("summarize", time.perf_counter() - t0)
        self._settle(results)
        return results

    def poll(self) -> list[WindowResult]:
        """Windows completed since, without a new window (their words arrived meanwhile)."""
        if self._summarizer is None or not self._summarizer.waiting:
            return []
        results = self._summarizer.poll()
        self._settle(results)
        return results

    def _settle(self, results: list[WindowResult]) -> None:
        for result in results:
            self._observe(result)
        if self._summarizer is not None:
            self.metrics.windows_waiting.set(self._summarizer.waiting_for_channels)
            words = self._summarizer.channels.words
            if words is not None:
                self.words_refused = words.stream.transcriber.refused - self._refused_before
                self.quick_declined = words.stream.quick_declined
            worker = self._summarizer.channels.explanations
            if worker is not None:  # the run's report only: in the metrics it would tell of disagreements
                self.explanations_shed = worker.shed
            if words is not None and words.skipped > self.utterances_skipped:
                self.metrics.dropped.labels("utterance").inc(words.skipped - self.utterances_skipped)
                self.utterances_skipped = words.skipped

    def _observe(self, result: WindowResult) -> None:
        for stage in self.stages:
            ms = result.timing_ms.get(f"{stage}_ms")
            if ms is not None:
                self.metrics.observe_stage(stage, ms / 1e3)
        # Nothing of what the window found (its channels' quality, who spoke, explanations, events)
        # goes to the metrics: see edge.metrics.metrics.

    def finish(self) -> SessionTail | None:
        """At the end of the session: speech still going on and a running disparity (they belong to no
        window); the channels' threads end. None when no window was analysed."""
        if self._summarizer is None:
            return None
        tail = self._summarizer.finish()
        self._settle(tail.windows)
        self._summarizer.close()
        return tail
