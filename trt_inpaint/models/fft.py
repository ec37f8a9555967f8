"""2-D real FFT pair (norm "ortho") over the last two dims, in two interchangeable implementations.

``FFTImpl.TORCH`` calls torch.fft (the reference). ``FFTImpl.MATMUL`` computes the same transforms as
matrix products with cos/sin matrices built from ``torch.arange`` over the input's own runtime size, so an
exported graph has no DFT op, holds no size-specific constants and serves any H and W (odd W included).
"""

from __future__ import annotations

import math
from enum import Enum

import torch
from torch import Tensor


class FFTImpl(str, Enum):
    """Which implementation computes the FFTs of the Fourier units."""

    TORCH = "torch"
    MATMUL = "matmul"


def _cos_sin(n_out: Tensor, n_in: Tensor, period: int | Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos and sin of 2*pi*((k*j) mod period)/period for k in n_out (rows), j in n_in (columns).

    The products and the remainder are exact int64; the angle is formed in float32 (float64 for float64
    inputs), then cast to ``dtype``.
    """
    work = torch.float64 if dtype == torch.float64 else torch.float32
    if not isinstance(period, Tensor):  # a tensor divisor exports to Mod in both ONNX exporters
        period = torch.full((), period, dtype=torch.int64, device=n_out.device)
    idx = torch.remainder(n_out[:, None] * n_in[None, :], period)
    angle = idx.to(work) * (2.0 * math.pi) / period.to(work)
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def _twice_rfft_bins(w: int | Tensor, device: torch.device) -> Tensor:
    """2*k for k = 0 .. w//2 (the non-negative frequencies of a real signal of length w), int64.

    Doubled so that no integer division is needed (it exports to a long ONNX subgraph).
    """
    return torch.arange(0, w + 1, 2, device=device)


def rfft2_matmul(x: Tensor) -> tuple[Tensor, Tensor]:
    """Real and imaginary parts of rfftn(x, dim=(-2, -1), norm="ortho"), as matrix products."""
    h, w = x.shape[-2], x.shape[-1]
    jh = torch.arange(h, device=x.device)
    jw = torch.arange(w, device=x.device)
    cw, sw = _cos_sin(jw, _twice_rfft_bins(w, x.device), 2 * w, x.dtype)  # (W, W//2+1)
    ch, sh = _cos_sin(jh, jh, h, x.dtype)  # (H, H), symmetric
    x = x * (h * w) ** -0.5
    a = torch.matmul(x, cw)  # real part along W
    b = -torch.matmul(x, sw)  # imaginary part along W
    re = torch.matmul(ch, a) + torch.matmul(sh, b)
    im = torch.matmul(ch, b) - torch.matmul(sh, a)
    return re, im


def irfft2_matmul(re: Tensor, im: Tensor, size: tuple[int | Tensor, int | Tensor]) -> Tensor:
    """irfftn(re + i*im, s=size, dim=(-2, -1), norm="ortho") as matrix products.

    Like torch's C2R transform, the imaginary parts of the zero (and, for even W, Nyquist) frequency
    columns are ignored after the inverse transform along H.
    """
    h, w = size
    jh = torch.arange(h, device=re.device)
    jw = torch.arange(w, device=re.device)
    kw2 = _twice_rfft_bins(w, re.device)
    ch, sh = _cos_sin(jh, jh, h, re.dtype)  # (H, H), symmetric
    cw, sw = _cos_sin(kw2, jw, 2 * w, re.dtype)  # (W//2+1, W)
    # Hermitian weights: 1 for the zero frequency and (even W) the Nyquist one, 2 for the others.
    weight = (2 - (kw2 == 0).to(re.dtype) - (kw2 == w).to(re.dtype))[:, None]
    cw = cw * weight
    sw = sw * weight
    # inverse complex DFT along H: (ch + i sh) @ (re + i im)
    zr = torch.matmul(ch, re) - torch.matmul(sh, im)
    zi = torch.matmul(ch, im) + torch.matmul(sh, re)
    # complex-to-real along W
    return (torch.matmul(zr, cw) - torch.matmul(zi, sw)) * (h * w) ** -0.5


def _fft_dtype(t: Tensor) -> torch.dtype:
    """torch.fft and torch.complex take no bfloat16 (nor float16 on the CPU): reduced precision is
    computed in float32, the one fp32 island of the Fourier units under autocast."""
    return torch.promote_types(t.dtype, torch.float32)


def rfft2_torch(x: Tensor) -> tuple[Tensor, Tensor]:
    """Reference: torch.fft.rfftn over the last two dims, norm "ortho"."""
    spec = torch.fft.rfftn(x.to(_fft_dtype(x)), dim=(-2, -1), norm="ortho")
    return spec.real, spec.imag


def irfft2_torch(re: Tensor, im: Tensor, size: tuple[int, int]) -> Tensor:
    """Reference: torch.fft.irfftn over the last two dims, norm "ortho"."""
    dtype = _fft_dtype(re)
    spec = torch.complex(re.to(dtype), im.to(dtype))
    return torch.fft.irfftn(spec, s=size, dim=(-2, -1), norm="ortho")


def rfft2_ortho(x: Tensor, impl: FFTImpl = FFTImpl.TORCH) -> tuple[Tensor, Tensor]:
    """(re, im) of the 2-D real FFT of x over (H, W), norm "ortho", shape (..., H, W//2+1)."""
    return rfft2_matmul(x) if FFTImpl(impl) is FFTImpl.MATMUL else rfft2_torch(x)


def irfft2_ortho(
    re: Tensor, im: Tensor, size: tuple[int | Tensor, int | Tensor], impl: FFTImpl = FFTImpl.TORCH
) -> Tensor:
    """Inverse of ``rfft2_ortho`` for an output of spatial ``size`` = (H, W)."""
    return irfft2_matmul(re, im, size) if FFTImpl(impl) is FFTImpl.MATMUL else irfft2_torch(re, im, size)
