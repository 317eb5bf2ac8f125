"""Fusion heads over any subset of modalities.

Every head takes ``features`` ``(N, sum(dims))``, the modalities' embeddings side by side in the
configured order, and ``present`` ``(N, M)``, 1 where a modality was seen in the window and 0
where it was not (no face, silence). A missing modality's slice is ignored whatever it holds. The
forward pass returns logits whose softmax is the fused distribution; :class:`FusionExport` adds the
``used`` output, the modalities that entered each result.

* :class:`LateFusion`: one classifier per modality, probabilities averaged with learned weights
  renormalised over the modalities present.
* :class:`EarlyFusion`: the embeddings concatenated (missing ones zeroed, the presence mask
  appended) into one MLP.
* :class:`HybridFusion`: ParallelNet's hybrid of intermediate and late fusion. Each modality is
  projected to a shared width; the projections of the modalities present are added (one branch)
  and multiplied (another); a third branch is the late fusion of per-modality classifiers; the
  three heads' distributions are combined by learned softmax weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EPS = 1e-6


class FusionNet(nn.Module):
    def __init__(self, dims: Sequence[int], num_classes: int) -> None:
        super().__init__()
        if not dims:
            raise ValueError("a fusion head needs at least one modality")
        self.dims = tuple(int(d) for d in dims)
        self.num_classes = num_classes
        self.embedding_dim = sum(self.dims)

    def split(self, features: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(features, list(self.dims), dim=1))

    def _masked_average(self, probs: list[torch.Tensor], weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Average of per-modality distributions with positive ``weights`` over the present ones.

        With no modality present the result is uniform.
        """
        w = weights[None, :] * present  # (N, M)
        stacked = torch.stack(probs, dim=1)  # (N, M, C)
        total = (w[:, :, None] * stacked).sum(dim=1) + EPS
        return total / total.sum(dim=1, keepdim=True)


class LateFusion(FusionNet):
    def __init__(self, dims: Sequence[int], num_classes: int = 8) -> None:
        super().__init__(dims, num_classes)
        self.heads = nn.ModuleList(nn.Linear(d, num_classes) for d in self.dims)
        self.weight_logits = nn.Parameter(torch.zeros(len(self.dims)))

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(h(x), dim=1) for h, x in zip(self.heads, self.split(features), strict=True)]
        fused = self._masked_average(probs, torch.softmax(self.weight_logits, dim=0), present)
        return torch.log(fused)


class EarlyFusion(FusionNet):
    def __init__(self, dims: Sequence[int], num_classes: int = 8, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__(dims, num_classes)
        self.mlp = nn.Sequential(
            nn.Linear(self.embedding_dim + len(self.dims), hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        masked = [x * present[:, i : i + 1] for i, x in enumerate(self.split(features))]
        out: torch.Tensor = self.mlp(torch.cat([*masked, present], dim=1))
        return out


class HybridFusion(FusionNet):
    def __init__(self, dims: Sequence[int], num_classes: int = 8, width: int = 64, dropout: float = 0.3) -> None:
        super().__init__(dims, num_classes)
        self.project = nn.ModuleList(
            nn.Sequential(nn.Linear(d, width), nn.LayerNorm(width), nn.Tanh()) for d in self.dims
        )
        self.head_sum = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        self.head_product = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        self.heads_late = nn.ModuleList(nn.Linear(width, num_classes) for _ in self.dims)
        self.late_logits = nn.Parameter(torch.zeros(len(self.dims)))
        self.combine_logits = nn.Parameter(torch.zeros(3))

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        embedded = [p(x) for p, x in zip(self.project, self.split(features), strict=True)]
        mask = [present[:, i : i + 1] for i in range(len(embedded))]
        summed = torch.stack([e * m for e, m in zip(embedded, mask, strict=True)]).sum(dim=0)
        # A missing modality contributes the multiplicative identity.
        product = torch.stack([e * m + (1.0 - m) for e, m in zip(embedded, mask, strict=True)]).prod(dim=0)
        late = self._masked_average(
            [torch.softmax(h(e), dim=1) for h, e in zip(self.heads_late, embedded, strict=True)],
            torch.softmax(self.late_logits, dim=0),
            present,
        )
        alpha = torch.softmax(self.combine_logits, dim=0)
        fused = (
            alpha[0] * torch.softmax(self.head_sum(summed), dim=1)
            + alpha[1] * torch.softmax(self.head_product(product), dim=1)
            + alpha[2] * late
        )
        return torch.log(fused + EPS)


class FusionExport(nn.Module):
    """Export wrapper: ``(probabilities, used)``; ``used`` is the presence mask that entered."""

    def __init__(self, net: FusionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # 0/1 without a comparison-and-cast, which half-precision conversion would mistype.
        present = torch.clamp(torch.round(present), 0.0, 1.0)
        return torch.softmax(self.net(features, present), dim=1), present
