"""Layers shared by the model definitions."""

from __future__ import annotations

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
