"""The pack's speaker encoder (GE2E, ``clinic-export speaker``) on 16 kHz audio in memory."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clinic_signals.speaker import N_MELS, mean_embedding, mel_spectrogram, partials, raise_level
from contract.audio import SAMPLE_RATE
from edge.errors import ModelError
from edge.inference.base import InferenceEngine


class SpeakerEncoder:
    """Unit speaker embeddings of mel partials, and of whole recordings (mean of their partials)."""

    def __init__(self, engine: InferenceEngine) -> None:
        manifest = engine.manifest
        spec = manifest.input
        if manifest.task != "speaker":
            raise ModelError(f"{manifest.name} is not a speaker encoder (task {manifest.task!r})")
        if spec.features != "ge2e-mel" or spec.n_mels != N_MELS or (spec.rate or SAMPLE_RATE) != SAMPLE_RATE:
            raise ModelError(
                f"{manifest.name}: expected ge2e-mel features, {N_MELS} bands at {SAMPLE_RATE} Hz; "
                f"the manifest says {spec.features}, {spec.n_mels} bands at {spec.rate} Hz; rebuild the pack "
                "with `clinic-export speaker --pack PACK`"
            )
        self.engine = engine
        self.name = manifest.name
        self.sha256 = manifest.sha256

    def embed_partials(self, mels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(n, frames, 40)`` mel partials -> ``(n, 256)`` unit embeddings (a long utterance has dozens of
        partials: they go in runs of a few)."""
        out: npt.NDArray[np.float32] = self.engine.infer_many(np.ascontiguousarray(mels, dtype=np.float32))
        return out

    def embed(self, speech: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One embedding of a recording of one speaker (speech only; quiet speech is raised first)."""
        return mean_embedding(self.embed_partials(partials(mel_spectrogram(raise_level(speech)))))
