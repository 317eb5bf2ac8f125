"""Landmark-geometry MLP and rPPG 1-D CNN.

* :class:`LandmarkMLP` takes a flat vector of facial-landmark geometry (normalised coordinates or
  pairwise distances; the length is configured).
* :class:`RppgCNN1D` takes the rPPG pulse signal of a window, ``(N, channels, samples)``: the
  pulse trace and, optionally, the R, G, B skin means it came from.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from export.models.blocks import EmotionNet, Standardize, conv_stack


class LandmarkMLP(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        in_features: int = 136,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Standardize(in_features, axis=1, ndim=2)]
        c_in = in_features
        for width in hidden:
            layers += [nn.Linear(c_in, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            c_in = width
        self.embedding_dim = c_in
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)


class RppgCNN1D(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.embedding_dim = channels[-1]
        self.features = nn.Sequential(
            Standardize(in_channels, axis=1, ndim=3), *conv_stack(1, in_channels, channels, 7, dropout)
        )
        self.head = nn.Linear(self.embedding_dim, num_classes)
