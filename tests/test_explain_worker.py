"""Explanations beside the windows (edge.explain.worker): a window explained on the worker's thread
holds back no other window; a full queue sheds explanations, never windows."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest

from edge.analysis.summarize import SessionChannels, WindowSummarizer
from edge.channels.base import WindowContext
from edge.channels.face import FaceState
from edge.channels.voice import VoiceSession
from edge.config.models import AudioConfig, ExplainConfig, VisionConfig
from edge.explain.policy import Explainer
from edge.explain.worker import ExplanationWorker
from edge.results import FrameAnalysis, WindowInput

pytestmark = pytest.mark.unit

RATE = 16_000
HAPPY = np.array([0.05, 0, 0.8, 0.05, 0.05, 0.025, 0, 0.025], dtype=np.float32)
SAFETY_S = 60.0  # only a broken worker ever waits this long: every wait below is for an event


def _window(index: int) -> WindowInput:
    """Window ``index`` of a session: a smiling face over silence; its ready time is its index."""
    start = 10.0 + index
    frames = tuple(FrameAnalysis(start + i / 10, 1, 90.0, 0.9, HAPPY, 120.0, 1.0, 1.0) for i in range(25))
    return WindowInput(
        index=index,
        origin_s=0.0,
        segment_offset_s=0.0,
        start_s=start,
        end_s=start + 2.5,
        frames=frames,
        audio=np.zeros(int(2.5 * RATE), dtype=np.float32),
        audio_rate=RATE,
        video_present=True,
        audio_present=True,
        ready_monotonic=float(index),
    )


class Gate:
    """A face explainer that holds each call until released."""

    def __init__(self, *, fail: bool = False) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.fail = fail

    def __call__(self, context: WindowContext, result: Any) -> dict[str, Any] | None:  # noqa: ARG002
        self.entered.release()
        if not self.release.wait(SAFETY_S):
            raise TimeoutError("the test never released the explainer")
        if self.fail:
            raise RuntimeError("the face model failed")
        return {"cells": context.window.index}


def _summarizer(
    gate: Gate, explained: Callable[[float], bool], *, capacity: int = 8
) -> tuple[WindowSummarizer, ExplanationWorker]:
    explainer = Explainer(ExplainConfig(when="request"), {"face": gate}, disparity_threshold=0.6, requested=explained)
    worker = ExplanationWorker(explainer, capacity=capacity)
    audio = AudioConfig(vad="energy")
    channels = SessionChannels(
        {"face": FaceState(VisionConfig()), "voice": VoiceSession(audio, None)},
        explainer=explainer,
        explanations=worker,
    )
    start = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    return WindowSummarizer("s-1", start, VisionConfig(), audio, channels), worker


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.release.set()  # a failed test leaves no thread waiting


def test_a_window_goes_on_while_an_earlier_one_is_explained(gate: Gate) -> None:
    summarizer, worker = _summarizer(gate, lambda ready: ready == 1.0)  # only window 1 is explained
    assert summarizer.summarize(_window(1)) == []  # handed to the worker
    assert gate.entered.acquire(timeout=SAFETY_S)  # and being explained, held by the gate
    done = summarizer.summarize(_window(2))
    assert [(r.index, r.explanation) for r in done] == [(2, None)]
    assert summarizer.waiting == 1 and worker.pending == 1
    assert summarizer.waiting_for_channels == 0  # the metric's count: explanations are not in it

    gate.release.set()
    assert worker.wait(SAFETY_S)
    (back,) = summarizer.poll()
    assert back.index == 1 and back.label == "happy"
    assert back.explanation is not None and back.explanation.reason == "request"
    assert back.explanation.channels == {"face": {"cells": 1}}
    assert "explain_face_ms" in back.timing_ms and "fusion_ms" in back.timing_ms
    assert summarizer.waiting == 0 and summarizer.poll() == []
    summarizer.close()


def test_a_full_queue_completes_windows_without_their_explanation(gate: Gate) -> None:
    summarizer, worker = _summarizer(gate, lambda _ready: True, capacity=1)
    assert summarizer.summarize(_window(1)) == []
    assert gate.entered.acquire(timeout=SAFETY_S)  # window 1 is being explained
    assert summarizer.summarize(_window(2)) == []  # window 2 waits in the queue (its one place)
    shed = summarizer.summarize(_window(3))  # no place left: window 3 goes on unexplained
    assert [(r.index, r.explanation) for r in shed] == [(3, None)] and worker.shed == 1

    gate.release.set()
    assert worker.wait(SAFETY_S)
    back = summarizer.poll()
    assert [r.index for r in back] == [1, 2] and all(r.explanation is not None for r in back)
    summarizer.close()


def test_a_failing_explanation_leaves_the_window_without_one(caplog: pytest.LogCaptureFixture) -> None:
    gate = Gate(fail=True)
    gate.release.set()
    summarizer, worker = _summarizer(gate, lambda _ready: True)
    with caplog.at_level(logging.ERROR, logger="edge.explain.worker"):
        assert summarizer.summarize(_window(1)) == []
        assert worker.wait(SAFETY_S)
        (back,) = summarizer.poll()
    assert back.index == 1 and back.explanation is None and back.label == "happy"
    assert "window 1 could not be explained" in caplog.text
    summarizer.close()


def test_the_session_s_end_waits_for_the_explanations_under_way(gate: Gate) -> None:
    summarizer, worker = _summarizer(gate, lambda _ready: True)
    assert summarizer.summarize(_window(1)) == []
    assert summarizer.summarize(_window(2)) == []
    assert gate.entered.acquire(timeout=SAFETY_S)
    gate.release.set()
    tail = summarizer.finish()
    assert [(r.index, r.explanation is not None) for r in tail.windows] == [(1, True), (2, True)]
    assert worker.shed == 0
    summarizer.close()


def test_closing_the_worker_returns_what_it_held_unexplained(gate: Gate) -> None:
    summarizer, worker = _summarizer(gate, lambda _ready: True)
    assert summarizer.summarize(_window(1)) == []
    assert summarizer.summarize(_window(2)) == []
    assert gate.entered.acquire(timeout=SAFETY_S)  # window 1 under way, window 2 queued
    returned: list[Any] = []
    closing = threading.Thread(target=lambda: returned.extend(worker.close()))
    closing.start()
    deadline = time.monotonic() + SAFETY_S
    while worker.pending != 1 and time.monotonic() < deadline:  # the queue is emptied, window 1 still held
        time.sleep(0.005)
    gate.release.set()
    closing.join(SAFETY_S)
    assert [(r.index, r.explanation is not None) for r in returned] == [(1, True), (2, False)]
    assert worker.shed == 1
    assert not worker.submit(returned[0], "request", None, {})  # type: ignore[arg-type]  # closed: shed
    assert worker.shed == 2
    summarizer.close()
