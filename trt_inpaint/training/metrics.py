"""Image quality metrics: PSNR and SSIM always; LPIPS (VGG) when the user gives its weights.

Images are (H, W, 3) uint8 or float arrays in [0, 1] (uint8 is divided by 255); metrics are per image.
- PSNR = 10 log10(1 / MSE) over all pixels and channels (inf for identical images).
- SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03, data range 1, valid
  filtering (no padding), computed per channel on RGB and averaged.
- LPIPS v0.1 (VGG): torchvision VGG16 features at relu1_2..relu5_3 of the input scaled to [-1, 1] and
  shifted/scaled per channel, unit-normalised over channels, squared difference weighted by the learnt
  1x1 "lin" layers, spatially averaged and summed. Needs two files: torchvision's vgg16 weights and the
  lpips package's ``weights/v0.1/vgg.pth`` (keys ``lin<i>.model.1.weight``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trt_inpaint.errors import CheckpointError


def as_float(img: np.ndarray) -> np.ndarray:
    """uint8 -> float64 / 255; uint16 -> / 65535; float -> float64 as is."""
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    return img.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    a, b = as_float(a), as_float(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, win: int = 11, sigma: float = 1.5) -> float:
    a, b = as_float(a), as_float(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}, got {a.shape[:2]}")
    x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[:, None]  # (C, 1, H, W)
    y = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)))[:, None]
    w = gaussian_window(win, sigma)[None, None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mx**2
    syy = F.conv2d(y * y, w) - my**2
    sxy = F.conv2d(x * y, w) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


# ---- LPIPS ------------------------------------------------------------------------------------------

_LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
_LIN_KEY = re.compile(r"(?:^|\.)lins?\.?(\d)\.model\.1\.weight$")


class LPIPS(nn.Module):
    """forward(x, y in [0, 1], NCHW) -> (N,) distances."""

    def __init__(self, vgg: nn.Module, lins: list[Tensor]):
        super().__init__()
        self.vgg = vgg
        self.lins = nn.ParameterList([nn.Parameter(w.float(), requires_grad=False) for w in lins])
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _unit(f: Tensor, eps: float = 1e-10) -> Tensor:
        return f / (torch.sqrt((f**2).sum(dim=1, keepdim=True)) + eps)

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.vgg(((x * 2 - 1) - self.shift) / self.scale)
        fy = self.vgg(((y * 2 - 1) - self.shift) / self.scale)
        total = 0
        for a, b, w in zip(fx, fy, self.lins, strict=True):
            d = (self._unit(a) - self._unit(b)) ** 2
            total = total + F.conv2d(d, w).mean(dim=(2, 3))
        return total.flatten()


def load_lpips(vgg16_path: str | Path, lin_path: str | Path) -> LPIPS:
    from trt_inpaint.training.vgg import load_vgg16_features, read_weights

    vgg = load_vgg16_features(vgg16_path, _LPIPS_LAYERS, normalize=False)
    sd = read_weights(lin_path)
    lins: dict[int, Tensor] = {}
    for k, v in sd.items():
        m = _LIN_KEY.search(k)
        if m:
            lins[int(m.group(1))] = v
    want = [(1, c, 1, 1) for c in _LPIPS_CHANNELS]
    if sorted(lins) != list(range(5)) or [tuple(lins[i].shape) for i in range(5)] != want:
        raise CheckpointError("not LPIPS v0.1 VGG lin weights (expected lin0..lin4.model.1.weight)", lin_path)
    return LPIPS(vgg, [lins[i] for i in range(5)]).eval()


def to_tensor(img: np.ndarray) -> Tensor:
    """(H, W, 3) image -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(as_float(img).transpose(2, 0, 1))).float()[None]
