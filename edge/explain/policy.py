"""Which windows are explained, and at what cost.

``explain.when``: ``every`` window; ``disagreement`` (the default): windows whose channels disagree
(disparity at or above its threshold) or whose result is ``mixed`` or ``uncertain``; ``request``:
only while a clinician asked for explanations (the ``explain`` command, for some seconds); ``off``.
Requests are honoured in every mode but ``off``. Each explanation's cost is in the window's timing
(``explain_face_ms``, ``explain_voice_ms``) and in ``clinic_edge_stage_seconds``; the number of
explained windows is ``clinic_edge_explanations_total{reason}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from clinic_signals.prosody import SpeakerBaseline
from contract.classes import CLASSES
from edge.channels.speech import SpeechEmotionModel
from edge.config.models import AudioConfig, ExplainConfig
from edge.explain.maps import face_occlusion, timed, voice_segments
from edge.inference.face import FaceExpressionModel
from edge.results import Disparity, Explanation, FaceChannel, FrameAnalysis, Utterance, VoiceChannel


class Explainer:
    def __init__(
        self,
        config: ExplainConfig,
        audio: AudioConfig,
        *,
        face_model: FaceExpressionModel | None,
        speech: SpeechEmotionModel | None,
        baseline: SpeakerBaseline | None,
        disparity_threshold: float,
        keep_words: bool,
        requested: Callable[[float], bool] = lambda _t: False,
    ) -> None:
        self.config = config
        self.audio = audio
        self.face_model = face_model
        self.speech = speech
        self.baseline = baseline
        self.disparity_threshold = disparity_threshold
        self.keep_words = keep_words
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

    def explain(
        self,
        reason: str,
        *,
        frames: Sequence[FrameAnalysis],
        face: FaceChannel | None,
        audio: npt.NDArray[np.float32],
        voice: VoiceChannel | None,
        utterances: Sequence[Utterance],
    ) -> Explanation:
        costs: dict[str, float] = {}
        face_map = regions = label = None
        if self.face_model is not None and face is not None and face.probs is not None:
            best = int(np.argmax(face.probs))
            crops = [f for f in frames if f.crop is not None and f.probs is not None]
            if crops:
                t0 = time.perf_counter()
                chosen = max(crops, key=lambda f: float(f.probs[best]) if f.probs is not None else 0.0)
                if chosen.crop is not None:
                    grid, regions = face_occlusion(self.face_model, chosen.crop, best, self.config.grid)
                    face_map = tuple(tuple(round(float(v), 4) for v in row) for row in grid)
                    label = CLASSES[best]
                timed(costs, "explain_face_ms", t0)
        segments = None
        if voice is not None and voice.quality in ("good", "settling") and self.baseline is not None:
            t0 = time.perf_counter()
            segments = voice_segments(
                audio, speech=self.speech, baseline=self.baseline, silence_dbfs=self.audio.silence_dbfs
            )
            timed(costs, "explain_voice_ms", t0)
        words = tuple(w for u in utterances for w in u.importance) if self.keep_words and utterances else None
        return Explanation(
            reason=reason,
            face_map=face_map,
            face_regions=regions,
            face_label=label,
            voice_segments=segments,
            words=words,
            cost_ms=costs,
        )
