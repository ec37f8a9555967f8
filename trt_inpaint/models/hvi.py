"""The HVI colour space of HVI-CIDNet (RGB <-> HVI) with a trainable density k, export-friendly.

Forward: I = max(R, G, B), m = min(R, G, B); hue h in [0, 1) from the HSV sector formula (0 where I == m);
S = (I - m) / (I + eps); C_k = (sin(pi * I / 2) + eps) ** k;
HVI = (C_k * S * cos(2 pi h), C_k * S * sin(2 pi h), I).

Inverse: clamp H, V to [-1, 1] and I to [0, 1]; divide H, V by C_k + eps and clamp; h = atan2(V + eps,
H + eps) / (2 pi) mod 1; s = |(H, V)|; HSV -> RGB with v = I. eps = 1e-8 as in the original, with one
change: the original adds eps inside the square root, which lifts a grey pixel's saturation to
sqrt(eps) = 1e-4 (a 1e-4 round-trip error); we add eps ** 2 there, which keeps the gradient finite and the
round trip exact to fp32 rounding. Unlike the original (which reuses a detached copy of k from the last
forward), the inverse uses the parameter itself, so k gets gradient through both directions.

Written with elementwise ops and ``torch.where`` only (no index assignment; atan2 built from atan), so it
exports to ONNX opset 17 and runs in ONNX Runtime and TensorRT.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

EPS = 1e-8
_PI = math.pi


def atan2(y: Tensor, x: Tensor) -> Tensor:
    """atan2(y, x) in (-pi, pi] from atan and where (ONNX has no atan2); 0 at (0, 0), finite gradients.

    The atan argument is always min(|x|, |y|) / max(|x|, |y|) in [0, 1], so nothing overflows in fp16.
    """
    ax, ay = x.abs(), y.abs()
    swap = ay > ax
    num = torch.where(swap, ax, ay)
    den = torch.where(swap, ay, ax)
    den = torch.where(den == 0, 1.0, den)
    a = torch.atan(num / den)  # in [0, pi/4]
    a = torch.where(swap, _PI / 2 - a, a)  # angle of (|x|, |y|) in [0, pi/2]
    a = torch.where(x < 0, _PI - a, a)
    return torch.where(y < 0, -a, a)


class HVITransform(nn.Module):
    """RGB (N, 3, H, W) in [0, 1] <-> HVI (N, 3, H, W). One trainable scalar ``density_k`` (init 0.2).

    ``alpha_s`` scales the saturation and ``alpha`` the RGB result of the inverse (both 1 = off).
    """

    def __init__(self, k: float = 0.2, alpha_s: float = 1.0, alpha: float = 1.0):
        super().__init__()
        # shape (1,) like the original, so its "density_k" entry loads as is
        self.density_k = nn.Parameter(torch.full((1,), float(k)))
        self.alpha_s = float(alpha_s)
        self.alpha = float(alpha)

    def _density(self, value: Tensor) -> Tensor:
        """C_k = (sin(pi * I / 2) + eps) ** k, shape of ``value``."""
        return (torch.sin(value * (0.5 * _PI)) + EPS).pow(self.density_k.to(value.dtype))

    def forward(self, rgb: Tensor) -> Tensor:
        r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
        value = torch.maximum(torch.maximum(r, g), b)
        vmin = torch.minimum(torch.minimum(r, g), b)
        chroma = value - vmin
        span = chroma + EPS
        # HSV sector formula, in sixths of a turn; R wins ties over G, G over B (as the original)
        hue_r = (g - b) / span
        hue_r = torch.where(hue_r < 0, hue_r + 6.0, hue_r)  # mod 6; (g - b) / span is in [-1, 1]
        hue_g = 2.0 + (b - r) / span
        hue_b = 4.0 + (r - g) / span
        hue = torch.where(r == value, hue_r, torch.where(g == value, hue_g, hue_b))
        hue = torch.where(vmin == value, 0.0, hue) * (1.0 / 6.0)
        sat = chroma / (value + EPS)
        sat = torch.where(value == 0, 0.0, sat)
        radius = self._density(value) * sat
        angle = hue * (2.0 * _PI)
        return torch.cat([radius * torch.cos(angle), radius * torch.sin(angle), value], dim=1)

    def inverse(self, hvi: Tensor) -> Tensor:
        hh = hvi[:, 0:1].clamp(-1.0, 1.0)
        vv = hvi[:, 1:2].clamp(-1.0, 1.0)
        value = hvi[:, 2:3].clamp(0.0, 1.0)
        density = self._density(value) + EPS
        density = torch.where(
            density == 0, 1.0, density
        )  # only in fp16, where eps underflows (black: H = V = 0)
        hh = (hh / density).clamp(-1.0, 1.0)
        vv = (vv / density).clamp(-1.0, 1.0)
        hue = atan2(vv + EPS, hh + EPS) * (1.0 / (2.0 * _PI))
        hue = torch.where(hue < 0, hue + 1.0, hue)  # mod 1
        sat = torch.sqrt(hh * hh + vv * vv + EPS * EPS)
        if self.alpha_s != 1.0:
            sat = sat * self.alpha_s
        sat = sat.clamp(0.0, 1.0)
        # HSV -> RGB: channel n (R 5, G 3, B 1) = v - v * s * clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6
        sixth = hue * 6.0
        vs = value * sat
        channels = []
        for n in (5.0, 3.0, 1.0):
            kk = sixth + n
            kk = torch.where(kk >= 6.0, kk - 6.0, kk)  # sixth is in [0, 6]: one wrap suffices
            channels.append(value - vs * torch.minimum(kk, 4.0 - kk).clamp(0.0, 1.0))
        rgb = torch.cat(channels, dim=1)
        if self.alpha != 1.0:
            rgb = rgb * self.alpha
        return rgb

    def extra_repr(self) -> str:
        return f"k={self.density_k.item():.4g}, alpha_s={self.alpha_s:g}, alpha={self.alpha:g}"
