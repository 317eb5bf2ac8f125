"""Explanations computed beside the windows, not in their way.

An explanation (a face occlusion map, the voice's segment importances) runs a model a few dozen
times: 10-20 ms on an idle machine, 150-400 ms per window on a device busy with several rooms. Computed
on the analysis thread, a burst of them (the windows of an utterance complete together when its
words arrive) held back the windows behind it, among them those without the client's speech, which
wait for nobody. In a live room the :class:`ExplanationWorker` computes them on a thread of its
own: a window that needs one is handed over complete but for it and comes back with it; every other
window goes on at once.

The thread keeps the room's priority. At a lower one (as the words' thread has) it held back the
words on a busy device: the voice's explanation runs Praat, which keeps the interpreter's lock for
much of its work, and a thread that holds the lock while the kernel makes it wait for a core makes
every other thread of the room wait with it (ten minutes of four rooms in step: 3 and 4 stretches
of speech shed at nice 10 and 15, 1 at the room's priority, 0 with explanations inline).

The worker's queue is bounded (:data:`CAPACITY` windows). On a device that cannot keep up, a window
that finds it full is completed without an explanation (counted in the run's report; not in the
metrics, where with ``explain.when = "disagreement"`` it would tell of a session's disagreements),
never lost or held back. A recording analysed as a file (not in real time) explains inline, so its
results do not depend on the machine's speed.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from edge.channels.base import WindowContext
from edge.explain.policy import Explainer
from edge.results import WindowResult

logger = logging.getLogger(__name__)

CAPACITY = 8  # windows waiting for an explanation: eight seconds of a room's windows


@dataclass(frozen=True)
class _Job:
    result: WindowResult
    reason: str
    context: WindowContext
    results: Mapping[str, Any]


def explained(
    explainer: Explainer, result: WindowResult, reason: str, context: WindowContext, results: Mapping[str, Any]
) -> WindowResult:
    """``result`` with its explanation, and the explanation's cost among its timings."""
    explanation = explainer.explain(reason, context, results)
    return replace(result, explanation=explanation, timing_ms={**result.timing_ms, **explanation.cost_ms})


class ExplanationWorker:
    """One per live session: explains the windows handed to it, in order, on its own thread."""

    def __init__(self, explainer: Explainer, *, capacity: int = CAPACITY) -> None:
        self.explainer = explainer
        self.capacity = capacity
        self.shed = 0  # windows completed without their explanation: the queue was full
        self._jobs: deque[_Job] = deque()
        self._done: list[WindowResult] = []
        self._busy = False
        self._closed = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Windows handed over and not yet collected (waiting, being explained, or explained)."""
        with self._wake:
            return len(self._jobs) + int(self._busy) + len(self._done)

    def submit(self, result: WindowResult, reason: str, context: WindowContext, results: Mapping[str, Any]) -> bool:
        """Hand over a window to explain; False (and counted in ``shed``) when the queue is full or
        the worker closed: the caller completes the window without its explanation."""
        with self._wake:
            if self._closed or len(self._jobs) >= self.capacity:
                self.shed += 1
                return False
            self._jobs.append(_Job(result, reason, context, results))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="explain", daemon=True)
                self._thread.start()
            self._wake.notify_all()
            return True

    def collect(self) -> list[WindowResult]:
        """The windows explained since the last call, in the order they were handed over."""
        with self._wake:
            done, self._done = self._done, []
            return done

    def wait(self, timeout: float) -> bool:
        """Wait until every window handed over is explained; False if ``timeout`` passed first."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def close(self) -> list[WindowResult]:
        """Stop the thread; the windows not yet explained are returned without an explanation (and
        counted in ``shed``), after those already explained."""
        with self._wake:
            self._closed = True
            left = [job.result for job in self._jobs]
            self.shed += len(left)
            self._jobs.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
        return self.collect() + left

    def _work(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._jobs or self._closed)
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                out = explained(self.explainer, job.result, job.reason, job.context, job.results)
            except Exception:  # an explanation is extra: the window goes on without it
                logger.exception(
                    "window %d could not be explained; it is stored without an explanation", job.result.index
                )
                out = job.result
            with self._wake:
                self._done.append(out)
                self._busy = False
                self._wake.notify_all()
