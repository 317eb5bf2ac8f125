"""The trained speech-emotion CNN from a model pack, on a window's audio.

The manifest says which features the model was trained on (``frame-features`` for the 1-D CNN,
``logmel`` for the 2-D CNN), with their settings and the clip length; the window's audio is centred
in a clip of that length exactly as ``clinic-export train`` prepares its data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clinic_signals.audio import FrameFeatures, LogMel, centre_window
from contract.audio import SAMPLE_RATE
from edge.errors import ModelError
from edge.inference.base import InferenceEngine
from edge.inference.manifest import ProductClasses


class SpeechEmotionModel:
    def __init__(self, engine: InferenceEngine) -> None:
        manifest = engine.manifest
        spec = manifest.input
        if manifest.task != "speech":
            raise ModelError(f"{manifest.name} is not a speech model (task {manifest.task!r})")
        kind = spec.features
        if spec.window_s is None or spec.n_mels is None:
            missing = "window_s" if spec.window_s is None else "n_mels"
            raise ModelError(f"{manifest.name}: the manifest's speech input lacks {missing!r}; rebuild the pack")
        rate = spec.rate if spec.rate is not None else SAMPLE_RATE
        window_s, n_mels, n_mfcc = spec.window_s, spec.n_mels, spec.n_mfcc or 0
        if rate != SAMPLE_RATE:
            raise ModelError(f"{manifest.name} expects {rate} Hz audio; the room captures {SAMPLE_RATE} Hz")
        self.features: FrameFeatures | LogMel
        if kind == "frame-features" and manifest.input.layout == "NCT":
            self.features = FrameFeatures(SAMPLE_RATE, n_mels, n_mfcc)
        elif kind == "logmel" and manifest.input.layout == "NCHW":
            self.features = LogMel(SAMPLE_RATE, n_mels)
        else:
            raise ModelError(
                f"{manifest.name}: unknown speech input {kind!r} with layout {manifest.input.layout}; "
                "expected frame-features (NCT) or logmel (NCHW)"
            )
        self.engine = engine
        self.name = manifest.name
        self.samples = round(window_s * SAMPLE_RATE)
        self._classes = ProductClasses(manifest)

    def predict(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The eight-class distribution ``(8,)`` of one window's audio (16 kHz mono)."""
        clip = centre_window(audio, self.samples)
        # (1, channels, frames) for the 1-D CNN; (1, 1, n_mels, frames) for the 2-D CNN.
        features = self.features(clip)
        x = features[None] if isinstance(self.features, FrameFeatures) else features.T[None, None]
        probs: npt.NDArray[np.float32] = self._classes(self.engine.infer(np.ascontiguousarray(x, dtype=np.float32)))[0]
        return probs
