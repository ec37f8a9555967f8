"""The combiner's loss: lambda-weighted style (Gram) + edge (Sobel) + perceptual (VGG16) + MSE.

The paper names the four terms but gives no lambdas nor layers; ours:
- MSE over all pixels (the stage output is composited, so only hole pixels carry a gradient);
- edge: L1 between Sobel gradient magnitudes of the greyscale images (replicate padding);
- perceptual: mean L1 between VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3;
- style: mean L1 between the Gram matrices of those features, Gram = F F^T / (C H W).
Perceptual and style need VGG16 weights; without them those terms are off (``LossWeights.active``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class LossWeights:
    mse: float = 1.0
    edge: float = 0.1
    perceptual: float = 0.05
    style: float = 100.0

    def without_vgg(self) -> LossWeights:
        return replace(self, perceptual=0.0, style=0.0)

    @property
    def needs_vgg(self) -> bool:
        return self.perceptual > 0 or self.style > 0


def mse_loss(output: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(output, target)


def gram_matrix(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C * H * W."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def sobel_magnitude(x: Tensor, eps: float = 1e-6) -> Tensor:
    """(N, C, H, W) RGB (or grey) -> (N, 1, H, W) Sobel gradient magnitude of the luma."""
    if x.shape[1] == 3:
        x = sum(w * x[:, i : i + 1] for i, w in enumerate(_LUMA))
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    k = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return torch.sqrt(g[:, :1] ** 2 + g[:, 1:] ** 2 + eps)


def edge_loss(output: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(sobel_magnitude(output), sobel_magnitude(target))


def perceptual_loss(out_feats: list[Tensor], target_feats: list[Tensor]) -> Tensor:
    return sum(F.l1_loss(a, b) for a, b in zip(out_feats, target_feats, strict=True)) / len(out_feats)


def style_loss(out_feats: list[Tensor], target_feats: list[Tensor]) -> Tensor:
    return sum(
        F.l1_loss(gram_matrix(a), gram_matrix(b)) for a, b in zip(out_feats, target_feats, strict=True)
    ) / len(out_feats)


class CombinedLoss(nn.Module):
    """forward(output, target) -> (total, {term: value}) with only the active (weight > 0) terms."""

    def __init__(self, weights: LossWeights, vgg: nn.Module | None = None):
        super().__init__()
        if weights.needs_vgg and vgg is None:
            raise ValueError("perceptual/style terms need VGG16 features; use weights.without_vgg()")
        self.weights = weights
        self.vgg = vgg if weights.needs_vgg else None

    def forward(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        w = self.weights
        terms: dict[str, Tensor] = {}
        if w.mse > 0:
            terms["mse"] = mse_loss(output, target)
        if w.edge > 0:
            terms["edge"] = edge_loss(output, target)
        if self.vgg is not None:
            fo = self.vgg(output)
            with torch.no_grad():
                ft = self.vgg(target)
            if w.perceptual > 0:
                terms["perceptual"] = perceptual_loss(fo, ft)
            if w.style > 0:
                terms["style"] = style_loss(fo, ft)
        if not terms:
            raise ValueError("every loss weight is 0")
        total = sum(getattr(w, k) * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}


class MSEOnly(nn.Module):
    """The denoisers' loss, with the same (total, terms) interface."""

    def forward(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        loss = mse_loss(output, target)
        return loss, {"mse": float(loss.detach())}
