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

from export.models.blocks import EmotionNet, Standardize


class SpeechCNN1D(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 118,
        channels: Sequence[int] = (64, 128, 128),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Standardize(in_channels, axis=1, ndim=3)]
        c_in = in_channels
        for c_out in channels:
            layers += [
                nn.Conv1d(c_in, c_out, 5, padding=2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(2),
                nn.Dropout(dropout),
            ]
            c_in = c_out
        layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
        self.embedding_dim = c_in
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)


class SpeechCNN2D(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        n_mels: int = 128,
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Standardize(n_mels, axis=2, ndim=4)]
        c_in = 1
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Dropout2d(dropout),
            ]
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.embedding_dim = c_in
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)
