"""The speaker encoder: Resemblyzer's GE2E LSTM, re-created in PyTorch and exported to ONNX.

The ``resemblyzer`` wheel (Apache 2.0) ships the trained weights (``pretrained.pt``: a 3-layer LSTM
of 256 units over 40-band mel partials, a linear layer, ReLU and L2 normalisation, trained with the
generalised end-to-end loss on LibriSpeech, VoxCeleb 1 and 2). The weights are read from the
package's folder without importing it (its audio helpers need librosa and webrtcvad, which the
toolchain does not). The network is defined here, loaded with every weight of the checkpoint, and
exported to one ONNX graph: mel partials in, unit embeddings out. The room computes the mel
features itself (:mod:`clinic_signals.speaker`); ``tests/test_speaker.py`` checks the whole
pipeline against the original package's ``VoiceEncoder.embed_utterance``.

Real inputs for the export check are partials of speech synthesised with espeak-ng (several
voices), so no recording is needed to build the pack.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from clinic_signals.speaker import HOP, N_MELS, PARTIAL_FRAMES, WIN, mel_spectrogram, partials, raise_level
from contract.audio import SAMPLE_RATE
from contract.files import sha256_file
from contract.pack import ModelCard
from export.errors import ExportError
from export.pack import ModelSource

logger = logging.getLogger(__name__)

NAME = "speaker-ge2e"
HIDDEN = 256
LAYERS = 3
EMBEDDING = 256
SENTENCES = (
    "Good morning, thank you for coming in today.",
    "I have been sleeping badly since the move and I feel tired all the time.",
    "Tell me a little more about what happened last week.",
)
VOICES = ("en-us", "en-gb+m3", "en+f2", "en-us+m5")


class SpeakerEncoder(nn.Module):
    """GE2E: the last layer's final hidden state, a linear layer, ReLU, L2 normalisation."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        unit: torch.Tensor = raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp(min=1e-9)
        return unit


def weights_path() -> Path:
    """The packaged ``pretrained.pt``, found without importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError("the speaker encoder's weights are missing: pip install --no-deps resemblyzer==0.1.4")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise ExportError(f"{path} is missing: reinstall with pip install --no-deps --force-reinstall resemblyzer")
    return path


def load_encoder(path: Path | None = None) -> SpeakerEncoder:
    """The encoder with every one of its weights from the checkpoint (none missing, none left over
    but the training loss's similarity scale)."""
    path = path or weights_path()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: torch raises several kinds
        raise ExportError(f"{path}: not a readable speaker-encoder checkpoint ({exc})") from None
    state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ExportError(f"{path}: no model_state in the checkpoint")
    encoder = SpeakerEncoder()
    wanted = set(encoder.state_dict())
    missing = wanted - set(state)
    if missing:
        raise ExportError(f"{path}: the checkpoint lacks {sorted(missing)}")
    encoder.load_state_dict({k: v for k, v in state.items() if k in wanted})
    return encoder.eval()


def speak(text: str, voice: str, speed: int = 175) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng's ``voice`` at ``speed`` words a minute, 16 kHz, in memory (the
    file is temporary)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise ExportError("espeak-ng is needed for the export check's speech: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True, capture_output=True, timeout=60
        )
        with wave.open(str(out), "rb") as f:
            rate = f.getframerate()
            pcm = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE:  # espeak-ng speaks at 22.05 kHz
        positions = np.arange(round(pcm.shape[0] * SAMPLE_RATE / rate)) * (rate / SAMPLE_RATE)
        pcm = np.interp(positions, np.arange(pcm.shape[0]), pcm).astype(np.float32)
    return pcm


def real_partials() -> npt.NDArray[np.float32]:
    """Mel partials of synthesised speech, every voice and sentence."""
    out = [partials(mel_spectrogram(raise_level(speak(s, v)))) for v in VOICES for s in SENTENCES]
    return np.concatenate([p for p in out if p.shape[1] == PARTIAL_FRAMES]).astype(np.float32)


def build_source() -> ModelSource:
    path = weights_path()
    encoder = load_encoder(path)
    feeds: dict[str, npt.NDArray[np.generic]] = {"mels": real_partials()}
    logger.info("speaker encoder: %d real partials for the export check", feeds["mels"].shape[0])
    return ModelSource(
        name=NAME,
        role="speaker",
        architecture="ge2e-lstm",
        module=encoder,
        inputs={"mels": (1, PARTIAL_FRAMES, N_MELS)},
        outputs=("embedding",),
        output_labels=(),
        label_map={},
        activation="l2",
        input_fields={
            "layout": "NTC",
            "features": "ge2e-mel",
            "rate": SAMPLE_RATE,
            "n_mels": N_MELS,
            "window_s": PARTIAL_FRAMES * HOP / SAMPLE_RATE,
        },
        real_inputs=feeds,
        provenance={
            "weights": "resemblyzer 0.1.4 pretrained.pt (GE2E, Wan et al. 2018)",
            "weights_sha256": sha256_file(path),
            "front_end": {"win": WIN, "hop": HOP, "n_mels": N_MELS, "mel": "slaney", "partial_frames": PARTIAL_FRAMES},
        },
        card=ModelCard(
            data="LibriSpeech, VoxCeleb 1 and 2 (Resemblyzer's pretrained GE2E encoder)",
            licence="Apache 2.0 (resemblyzer)",
            limits=(
                "Trained on read and interview speech in English mostly; similarity thresholds were set on the "
                "product's own measurements (docs/channels.md, 'Whose voice is it').",
                "An embedding is biometric data: the room stores staff embeddings only with their consent and "
                "keeps the client's only in memory for the session.",
            ),
        ),
        spec={"hidden": HIDDEN, "layers": LAYERS, "embedding": EMBEDDING},
        dynamic={"mels": {1: "frames"}},
    )
