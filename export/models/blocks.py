"""Layers shared by the model definitions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Standardize(nn.Module):
    """``(x - mean) / std`` per feature channel, with statistics fitted on the training split.

    Part of the network so that the exported ONNX takes raw features, exactly as the room computes
    them. ``axis`` is the channel axis of a batch (1 for ``(N, C, T)``, 2 for ``(N, 1, mels, T)``)
    and ``ndim`` the batch's number of dimensions.
    """

    def __init__(self, channels: int, axis: int, ndim: int) -> None:
        super().__init__()
        shape = [1] * ndim
        shape[axis] = channels
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.channels = channels
        self.axis = axis

    def fit(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the statistics from ``(channels,)`` tensors; a zero deviation becomes 1."""
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)).reshape(self.std.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class EmotionNet(nn.Module):
    """A modality network: ``forward`` gives logits, ``embed`` the penultimate features.

    Subclasses define ``features`` (input -> embedding) and ``head`` (embedding -> logits).
    """

    embedding_dim: int
    features: nn.Module
    head: nn.Module

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.features(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.embed(x))
        return out


class WithProbabilities(nn.Module):
    """Export wrapper: ``(softmax(logits), embedding)``, the two outputs the room reads."""

    def __init__(self, net: EmotionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.net.embed(x)
        return torch.softmax(self.net.head(embedding), dim=1), embedding


def conv_stack(dims: int, c_in: int, channels: Sequence[int], kernel: int, dropout: float) -> list[nn.Module]:
    """Convolution blocks (conv without bias, batch norm, ReLU, 2x max pooling, dropout), 1-D or 2-D,
    followed by global average pooling and flattening."""
    conv, norm, pool, drop, gap = (
        (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.Dropout, nn.AdaptiveAvgPool1d)
        if dims == 1
        else (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.Dropout2d, nn.AdaptiveAvgPool2d)
    )
    layers: list[nn.Module] = []
    for c_out in channels:
        layers += [
            conv(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            norm(c_out),
            nn.ReLU(inplace=True),
            pool(2),
            drop(dropout),
        ]
        c_in = c_out
    return [*layers, gap(1), nn.Flatten()]
