"""Speech-emotion CNNs.

* :class:`SpeechCNN1D` reads the per-frame acoustic features of
  :class:`clinic_signals.audio.FrameFeatures` (MFCC, chroma, mel, zero-crossing rate, RMS) as a
  ``(N, channels, frames)`` sequence.
* :class:`SpeechCNN2D` reads a ``(N, 1, 128, frames)`` log-mel spectrogram as an image.

Both pool over time, so any window length works, and standardise their input with statistics
fitted on the training split (part of the exported graph).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from export.models.blocks import EmotionNet, Standardize, conv_stack


class SpeechCNN1D(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 118,
        channels: Sequence[int] = (64, 128, 128),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.embedding_dim = channels[-1]
        self.features = nn.Sequential(
            Standardize(in_channels, axis=1, ndim=3), *conv_stack(1, in_channels, channels, 5, dropout)
        )
        self.head = nn.Linear(self.embedding_dim, num_classes)


class SpeechCNN2D(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        n_mels: int = 128,
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.embedding_dim = channels[-1]
        self.features = nn.Sequential(Standardize(n_mels, axis=2, ndim=4), *conv_stack(2, 1, channels, 3, dropout))
        self.head = nn.Linear(self.embedding_dim, num_classes)
