"""Each loss term on cases with known answers."""

from __future__ import annotations

import pytest
import torch

from trt_inpaint.errors import CheckpointError
from trt_inpaint.training.losses import (
    CombinedLoss,
    LossWeights,
    edge_loss,
    gram_matrix,
    mse_loss,
    perceptual_loss,
    sobel_magnitude,
    style_loss,
)
from trt_inpaint.training.vgg import load_vgg16_features


def _step(width: int = 32, at: int = 12) -> torch.Tensor:
    x = torch.zeros(1, 3, 16, width)
    x[..., at:] = 1.0
    return x


def test_identical_images_give_zero_for_every_term(vgg16_file):
    vgg = load_vgg16_features(vgg16_file)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    total, terms = CombinedLoss(LossWeights(), vgg)(x, x.clone())
    assert set(terms) == {"mse", "edge", "perceptual", "style"}
    assert all(v == 0.0 for v in terms.values()) and float(total) == 0.0
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    _, t2 = CombinedLoss(LossWeights(), vgg)(y, x)
    assert all(v > 0 for v in t2.values())


def test_shifted_edge_raises_edge_term_by_the_known_amount():
    a, b = _step(at=12), _step(at=15)
    assert float(edge_loss(a, a)) == 0.0
    # a unit step has Sobel magnitude 4 in the two columns beside it; shifted by 3 the four columns differ
    expected = 4 * (4.0 - 1e-3) / 32
    assert float(edge_loss(a, b)) == pytest.approx(expected, rel=1e-4)
    mag = sobel_magnitude(a)[0, 0, 5]
    assert torch.allclose(mag[[11, 12]], torch.full((2,), 4.0), atol=1e-3) and float(mag[:10].max()) < 1e-2


def test_uniform_offset_changes_mse_not_edges():
    a = _step() * 0.5
    b = a + 0.2
    assert float(mse_loss(a, b)) == pytest.approx(0.04, rel=1e-5)
    assert float(edge_loss(a, b)) == pytest.approx(0.0, abs=1e-6)


def test_gram_matches_direct_computation():
    f = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = gram_matrix(f)
    n, c, h, w = f.shape
    for k in range(n):
        for i in range(c):
            for j in range(c):
                direct = sum(float(f[k, i, y, x] * f[k, j, y, x]) for y in range(h) for x in range(w))
                assert float(g[k, i, j]) == pytest.approx(direct / (c * h * w), rel=1e-12)
    assert torch.equal(g, g.transpose(1, 2))


def test_style_and_perceptual_terms_on_features():
    fa = [torch.ones(1, 2, 4, 4)]
    fb = [2 * torch.ones(1, 2, 4, 4)]
    # Gram of a constant c over C=2 channels: every entry c^2 * HW / (C H W) = c^2 / 2
    assert float(style_loss(fa, fb)) == pytest.approx(abs(4 / 2 - 1 / 2))
    assert float(perceptual_loss(fa, fb)) == pytest.approx(1.0)


def test_vgg_weights_are_required_and_checked(tmp_path, vgg16_file):
    with pytest.raises(ValueError, match="VGG16"):
        CombinedLoss(LossWeights())
    w = LossWeights().without_vgg()
    _, terms = CombinedLoss(w)(torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8))
    assert set(terms) == {"mse", "edge"}
    with pytest.raises(CheckpointError, match="not found"):
        load_vgg16_features(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, bad)
    with pytest.raises(CheckpointError, match="not torchvision VGG16"):
        load_vgg16_features(bad)
