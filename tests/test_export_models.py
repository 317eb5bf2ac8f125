"""Model definitions: shapes, embeddings, specification checks, and fusion over any subset."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from export.models.blocks import Standardize, WithProbabilities
from export.models.fusion import EarlyFusion, FusionExport, FusionNet, HybridFusion, LateFusion
from export.models.registry import ARCHITECTURES, build_model, parse_spec, sample_shape
from export.train.loop import fit_standardizers


@pytest.mark.unit
@pytest.mark.parametrize(
    ("raw", "embedding"),
    [
        ({"architecture": "face-cnn"}, 256),
        ({"architecture": "face-cnn", "size": 48, "dense": 64}, 64),
        ({"architecture": "speech-cnn1d"}, 128),
        ({"architecture": "speech-cnn2d"}, 128),
        ({"architecture": "landmark-mlp", "in_features": 40}, 128),
        ({"architecture": "rppg-cnn1d", "in_channels": 4}, 64),
    ],
)
def test_modality_networks_give_eight_probabilities_and_an_embedding(raw: dict[str, Any], embedding: int) -> None:
    spec = parse_spec(raw)
    net = build_model(spec).eval()
    out, emb = WithProbabilities(net)(torch.randn(3, *sample_shape(spec)))  # type: ignore[arg-type]
    assert out.shape == (3, 8) and emb.shape == (3, embedding)
    assert torch.allclose(out.sum(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.unit
def test_face_cnn_has_the_four_blocks_of_the_research_design() -> None:
    net = build_model(parse_spec({"architecture": "face-cnn"}))
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [32, 32, 64, 64, 128, 128, 256, 256]
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.Linear) and m.out_features == 256 for m in net.modules())


@pytest.mark.unit
def test_speech_models_accept_any_window_length() -> None:
    net = build_model(parse_spec({"architecture": "speech-cnn2d"})).eval()
    for frames in (50, 248, 600):
        assert net(torch.randn(2, 1, 128, frames)).shape == (2, 8)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"architecture": "face-cnn", "colour": "rgb"}, "Extra inputs are not permitted"),
        ({"architecture": "speech-cnn1d", "n_mfcc": 80, "n_mels": 64}, "n_mfcc .80. cannot exceed n_mels"),
        ({"architecture": "fusion-hybrid", "modalities": ["face", "voice"], "dims": [8]}, "2 modalities but 1 dims"),
        ({"architecture": "fusion-late", "modalities": ["face", "face"], "dims": [8, 8]}, "repeat"),
        ({"architecture": "resnet"}, "does not match any of the expected tags"),
        ({"architecture": "face-cnn", "dropout": 1.5}, "less than 1"),
    ],
)
def test_bad_specifications_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_spec(raw)


@pytest.mark.unit
def test_every_architecture_is_buildable() -> None:
    for arch in ARCHITECTURES:
        raw: dict[str, Any] = {"architecture": arch}
        if arch.startswith("fusion"):
            raw.update(modalities=["face", "voice"], dims=[4, 6])
        build_model(parse_spec(raw))


FUSIONS = [LateFusion, EarlyFusion, HybridFusion]
DIMS = (5, 7, 3)


@pytest.mark.unit
@pytest.mark.parametrize("kind", FUSIONS)
def test_fusion_ignores_what_a_missing_modality_holds(kind: type[FusionNet]) -> None:
    torch.manual_seed(0)
    net = kind(DIMS).eval()
    x = torch.randn(4, sum(DIMS))
    present = torch.tensor([[1.0, 0.0, 1.0]] * 4)
    garbage = x.clone()
    garbage[:, 5:12] = 1e3 * torch.randn(4, 7)  # the voice slice, marked missing
    assert torch.allclose(net(x, present), net(garbage, present), atol=1e-5)


@pytest.mark.unit
@pytest.mark.parametrize("kind", FUSIONS)
@pytest.mark.parametrize("mask", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 1, 1], [0, 1, 1]])
def test_fusion_accepts_every_subset_and_reports_it(kind: type[FusionNet], mask: list[int]) -> None:
    torch.manual_seed(1)
    net = FusionExport(kind(DIMS)).eval()
    present = torch.tensor([mask] * 2, dtype=torch.float32)
    probs, used = net(torch.randn(2, sum(DIMS)), present)
    assert probs.shape == (2, 8) and torch.allclose(probs.sum(dim=1), torch.ones(2), atol=1e-5)
    assert torch.equal(used, present)


@pytest.mark.unit
def test_late_fusion_of_one_modality_is_that_modality_alone() -> None:
    torch.manual_seed(2)
    net = LateFusion(DIMS).eval()
    x = torch.randn(3, sum(DIMS))
    alone = torch.softmax(net.heads[0](x[:, :5]), dim=1)
    fused = torch.softmax(net(x, torch.tensor([[1.0, 0.0, 0.0]] * 3)), dim=1)
    assert torch.allclose(alone, fused, atol=1e-4)


@pytest.mark.unit
def test_hybrid_fusion_combines_three_heads_with_learned_softmax_weights() -> None:
    net = HybridFusion(DIMS)
    assert net.combine_logits.shape == (3,) and net.combine_logits.requires_grad
    x, present = torch.randn(4, sum(DIMS), requires_grad=True), torch.ones(4, 3)
    net(x, present).sum().backward()
    assert net.combine_logits.grad is not None and torch.all(net.combine_logits.grad != 0)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("raw", "shift"),
    [
        ({"architecture": "speech-cnn1d", "n_mels": 16, "n_mfcc": 8}, -40.0),
        ({"architecture": "speech-cnn2d", "n_mels": 16}, -60.0),
        ({"architecture": "landmark-mlp", "in_features": 10}, 3.0),
        ({"architecture": "rppg-cnn1d"}, 100.0),  # one channel: the axis must not be guessed from sizes
        ({"architecture": "rppg-cnn1d", "in_channels": 4}, 100.0),
    ],
)
def test_input_statistics_are_fitted_per_channel(raw: dict[str, Any], shift: float) -> None:
    spec = parse_spec(raw)
    net = build_model(spec)
    rng = np.random.default_rng(0)
    x = (shift + 5.0 * rng.normal(size=(64, *sample_shape(spec)))).astype(np.float32)
    fit_standardizers(net, x)
    layer = next(m for m in net.modules() if isinstance(m, Standardize))
    z = layer(torch.from_numpy(x)).numpy()
    reduce = tuple(i for i in range(z.ndim) if i != layer.axis)
    np.testing.assert_allclose(z.mean(axis=reduce), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=reduce), 1.0, atol=1e-3)
