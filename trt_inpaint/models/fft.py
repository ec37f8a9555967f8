"""2-D real FFT pair (norm "ortho") over the last two dims, in three interchangeable implementations.

``FFTImpl.TORCH`` calls torch.fft (the reference). ``FFTImpl.MATMUL`` computes the same transforms as
plain matrix products with cos/sin matrices built from ``torch.arange`` over the input's own runtime size,
so an exported graph has no DFT op, holds no size-specific constants and serves any H and W (odd W
included); its cost per value grows with the side (O(H*W*(H+W)) in all). ``FFTImpl.FACTORED`` does the
same as two-factor Cooley-Tukey matrix products (``dft_factored``), about 2*(p+q) multiply-adds per value
for a side n = p*q: the one that ONNX export uses.

Spectra can travel packed, re and im stacked in a dimension of size 2 just before (H, W//2+1), which is
the layout the Fourier units feed their 1x1 convolution with.
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import Tensor

from trt_inpaint.models import dft_factored
from trt_inpaint.models.dft_factored import cis, evens


class FFTImpl(str, Enum):
    """Which implementation computes the FFTs of the Fourier units."""

    TORCH = "torch"
    MATMUL = "matmul"
    FACTORED = "factored"


def _cos_sin(n_out: Tensor, n_in: Tensor, period: int | Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos and sin of 2*pi*((k*j) mod period)/period for k in n_out (rows), j in n_in (columns)."""
    return cis(n_out[:, None] * n_in[None, :], period, dtype)


def rfft2_matmul(x: Tensor) -> tuple[Tensor, Tensor]:
    """Real and imaginary parts of rfftn(x, dim=(-2, -1), norm="ortho"), as matrix products."""
    h, w = x.shape[-2], x.shape[-1]
    jh = torch.arange(h, device=x.device)
    jw = torch.arange(w, device=x.device)
    cw, sw = _cos_sin(jw, evens(w, x.device), 2 * w, x.dtype)  # (W, W//2+1)
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
    kw2 = evens(w, re.device)
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


def rfft2_packed(x: Tensor, impl: FFTImpl = FFTImpl.TORCH) -> Tensor:
    """The 2-D real FFT of x (..., H, W) over (H, W), norm "ortho", packed as (..., 2, H, W//2+1)."""
    impl = FFTImpl(impl)
    if impl is FFTImpl.FACTORED:
        return dft_factored.rfft2_packed(x)
    return torch.stack(rfft2_matmul(x) if impl is FFTImpl.MATMUL else rfft2_torch(x), dim=-3)


def irfft2_packed(
    spec: Tensor, size: tuple[int | Tensor, int | Tensor], impl: FFTImpl = FFTImpl.TORCH
) -> Tensor:
    """Inverse of ``rfft2_packed`` for an output of spatial ``size`` = (H, W)."""
    impl = FFTImpl(impl)
    if impl is FFTImpl.FACTORED:
        return dft_factored.irfft2_packed(spec, size)
    re, im = spec.unbind(-3)
    return irfft2_matmul(re, im, size) if impl is FFTImpl.MATMUL else irfft2_torch(re, im, size)


def rfft2_ortho(x: Tensor, impl: FFTImpl = FFTImpl.TORCH) -> tuple[Tensor, Tensor]:
    """(re, im) of the 2-D real FFT of x over (H, W), norm "ortho", shape (..., H, W//2+1): ``rfft2_packed``
    unpacked."""
    re, im = rfft2_packed(x, impl).unbind(-3)
    return re, im


def irfft2_ortho(
    re: Tensor, im: Tensor, size: tuple[int | Tensor, int | Tensor], impl: FFTImpl = FFTImpl.TORCH
) -> Tensor:
    """Inverse of ``rfft2_ortho`` for an output of spatial ``size`` = (H, W): ``irfft2_packed`` of them."""
    return irfft2_packed(torch.stack((re, im), dim=-3), size, impl)
