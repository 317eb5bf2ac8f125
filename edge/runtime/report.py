"""What a finished session reports: frames, windows, drops, latency, what was published."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

STATS_KEPT = 10_000


@dataclass
class RunReport:
    session_id: str
    database: Path
    source: str
    backend: str
    room: str = ""  # site/room
    frames: int = 0
    frames_dropped: int = 0
    audio_dropped: int = 0
    windows: int = 0
    windows_dropped: int = 0
    store_failures: int = 0
    windows_lost: int = 0
    explanations_shed: int = 0  # windows stored without their explanation: explanations were behind
    utterances_skipped: int = 0  # speech left untranscribed because transcription was behind real time
    quick_declined: int = 0  # quick passes at sentences' starts not taken because the device was busy
    words_refused: dict[str, int] = field(default_factory=dict)  # transcript segments never analysed, by why
    source_restarts: int = 0
    published: int = 0
    unpublished: int = 0
    wall_s: float = 0.0
    # The most recent measurements only, so a day-long session does not grow them without bound.
    window_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_KEPT))
    frame_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_KEPT))

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def latency_summary(self) -> str:
        if not self.window_latency_ms:
            return "n/a"
        lat = sorted(self.window_latency_ms)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        return f"median {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms"
