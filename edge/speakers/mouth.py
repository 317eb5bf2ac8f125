"""The mouth cue of speaker attribution: whether the client's lips move while someone speaks.

Where the face mesh runs (the pulse channel's, on the client's face only), each mesh frame carries
how far the client's lips are apart as a share of the face's height (``FrameAnalysis.values
["mouth"]``: numbers, never pixels). Over a stretch of audio the mouth's movement is the spread
(standard deviation) of that opening: a speaking mouth opens and closes, a listening one hardly
moves.

How much a mouth moves depends on the person, the camera and the distance, so the cue calibrates
itself per session from the room's own voice activity: the movement in stretches with voice
(anyone's) against stretches of silence. It is used only once the session has shown that the
client's mouth moves with voice: the upper quartile of movement in voiced stretches is at least
``MOVING_MIN`` and ``RATIO`` times the median in silent ones. A photograph, a face the mesh does not
follow or a client who has not spoken yet never calibrates it, and the cue then says nothing.
Calibrated, a voiced stretch in which the mouth moves less than the geometric mean of the two
(silent median, voiced upper quartile) is not the client's speech. The cue only ever takes speech
away from the client (to ``unknown``): it never makes anyone's speech analysed. Memory only; the
statistics are forgotten with the session.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract.audio import SAMPLE_RATE
from edge.results import MOUTH, WindowInput

MIN_SAMPLES = 3  # mesh frames a stretch needs for its movement to count
MOVING_MIN = 0.01  # movement (std of lips apart / face height) a speaking mouth reaches at least
RATIO = 2.0  # voiced movement against silent movement that shows the mouth moves with voice
MIN_VOICED = 8  # voiced stretches with mesh frames before the cue can calibrate
MIN_QUIET = 4  # silent stretches with mesh frames before the cue can calibrate
KEPT = 400  # stretches kept per kind (about seven minutes of 1 s stretches)
SPAN_S = 0.8  # the stretches the statistics are made of (the attribution's partial length)
STEP_S = 0.4
VOICED_SHARE = 0.4  # voiced frames in a stretch that make it voiced
QUIET_SHARE = 0.05  # at most this many voiced frames make it silent


@dataclass(frozen=True)
class MouthTrack:
    """One window's mouth openings: mesh frames' times (seconds from the window's start) and values."""

    times: npt.NDArray[np.float64]
    opening: npt.NDArray[np.float64]

    @classmethod
    def of(cls, window: WindowInput) -> MouthTrack | None:
        """The window's track, or None when no frame carries the mouth's opening."""
        pairs = [(f.pts_s - window.start_s, float(f.values[MOUTH])) for f in window.frames if MOUTH in f.values]
        if not pairs:
            return None
        times, opening = zip(*pairs, strict=True)
        return cls(np.asarray(times, dtype=np.float64), np.asarray(opening, dtype=np.float64))

    def movement(self, start_s: float, end_s: float) -> float | None:
        """Spread of the opening in ``[start_s, end_s)`` (window seconds); None with too few frames."""
        inside = self.opening[(self.times >= start_s) & (self.times < end_s)]
        return float(np.std(inside)) if inside.shape[0] >= MIN_SAMPLES else None


class MouthCue:
    """One session's mouth statistics and its verdict on stretches of speech."""

    def __init__(self) -> None:
        self._voiced: deque[float] = deque(maxlen=KEPT)
        self._quiet: deque[float] = deque(maxlen=KEPT)
        self._seen_until = -math.inf  # session time up to which stretches were counted (windows overlap)

    def observe(self, track: MouthTrack, voiced: npt.NDArray[np.bool_], hop: int, start_s: float) -> None:
        """Count the window's stretches not counted before as voiced or silent movement (the window
        starts ``start_s`` into the session; voice-activity frame ``j`` at sample ``j * hop``)."""
        frame_s = hop / SAMPLE_RATE
        end_s = start_s + voiced.shape[0] * frame_s
        # Stretches on one grid of session time, each counted once.
        t = math.ceil(max(start_s, self._seen_until) / STEP_S - 1e-9) * STEP_S
        while t + SPAN_S <= end_s + 1e-9:
            at = t - start_s
            movement = track.movement(at, at + SPAN_S)
            frames = voiced[round(at / frame_s) : round((at + SPAN_S) / frame_s)]
            share = float(frames.mean()) if frames.size else 0.0
            if movement is not None and share >= VOICED_SHARE:
                self._voiced.append(movement)
            elif movement is not None and share <= QUIET_SHARE:
                self._quiet.append(movement)
            t += STEP_S
            self._seen_until = t

    @property
    def cut(self) -> float | None:
        """The movement below which voiced speech is not the client's; None until calibrated."""
        if len(self._voiced) < MIN_VOICED or len(self._quiet) < MIN_QUIET:
            return None
        moving = float(np.quantile(np.asarray(self._voiced), 0.75))
        quiet = float(np.median(np.asarray(self._quiet)))
        if moving < MOVING_MIN or moving < RATIO * quiet:
            return None
        return math.sqrt(max(quiet, MOVING_MIN / 10) * moving)

    def still(self, track: MouthTrack | None, start_s: float, end_s: float) -> bool:
        """Whether the client's mouth stayed still over ``[start_s, end_s)`` (window seconds), with the
        cue calibrated; False whenever the cue cannot tell."""
        cut = self.cut
        if cut is None or track is None:
            return False
        movement = track.movement(start_s, end_s)
        return movement is not None and movement < cut

    def close(self) -> None:
        self._voiced.clear()
        self._quiet.clear()
        self._seen_until = -math.inf
