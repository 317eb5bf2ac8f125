"""A small CNN on aligned grey face crops, for retraining on the product's eight classes.

Four convolution blocks (32-64-128-256 channels; two 3x3 convolutions with batch norm and ReLU,
2x2 max pooling and dropout each), global average pooling, a dense layer of 256 and the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from export.models.blocks import EmotionNet


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout2d(dropout),
    )


class FaceCNN(EmotionNet):
    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256),
        dense: int = 256,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            blocks.append(_block(c_in, c_out, dropout))
            c_in = c_out
        self.embedding_dim = dense
        self.features = nn.Sequential(
            *blocks,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c_in, dense),
            nn.BatchNorm1d(dense),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(dense, num_classes))
