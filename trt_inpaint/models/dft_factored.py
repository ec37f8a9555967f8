"""2-D real DFT pair (norm "ortho") as matrix products, Cooley-Tukey factored along H, for any H and W.

Along H each transform is two small matrix products: a side n is split as n = p * q, p the largest
divisor of n with p * p <= n, computed from the input's own size (inside an exported graph too, from a
Range over 1..n), so one graph serves every size and its structure never depends on how a size factors
(a prime n gives p = 1: the plain DFT). The first product runs over the coarse index (a 2p x 2p matrix);
the twiddle factors are folded into the second, a batch of p matrices 2q x 2q over the fine index: about
4 * (p + q) multiply-adds per complex value instead of 4 * n (n = 256: 128 instead of 1024).

Along W, the last axis, it stays one plain product (W x 2*(W//2+1)): a factored form there needs the
coarse index contracted first, i.e. two corner turns of the whole tensor per direction, and in ONNX
Runtime those transposes and the small-K products cost more than they save up to W = 256 (big-LaMa at
2048 pixels; measured on single Fourier units, prototypes not kept). What W's plain products cost instead
(big-LaMa, ONNX Runtime, 2 threads, steady-state profile): 0.22 s per megapixel at 512 pixels, 0.71 at 2048,
against 0.43 and 0.41 for the four factored H products; the whole model's growth is in
benchmarks/reports/cpu-2core/lama-scaling.md. A radix-2 split of W (even widths
only: half-length products on x[:W/2] +- x[W/2:], spectrum kept in even-then-odd order, exact) was measured as
well: a big-LaMa Fourier unit (192 channels) in ONNX Runtime on 2 cores took 13.6 ms instead of 11.0 at 64x64
and 378-388 ms instead of 360-370 at 256x256; the slices, sums and concatenations cost more than the halved
products save. A layout with no corner turn at all does not pay either: channels last (the spectral
transform's 1x1 convolutions as matrix products with a transposed operand, both axes factored, re/im next to
the contracted index at every step, the inverse the mirror of the forward) is exact, but one big-LaMa spectral
transform (384 channels) took 16.8 ms instead of 11.7 at 64x64 and 413 instead of 290 at 256x256 in ONNX
Runtime on 2 cores: its eight DFT products (a short axis contracted, not the last one) ran at about 55 GFLOP/s
on average (the plain W products here: about 190), and the 1x1 convolutions lost ONNX Runtime's blocked-layout
kernels.
Nor does a W split by a transpose of 64-byte blocks only ((..., H, p, q) -> (..., p, H, q), so the coarse
index is contracted by one left product over long columns and the fine one, twiddles folded, by right products
giving bins k1 + p*k2; exact to 3e-5 against numpy's rfft): the forward W step of 192 channels at 256x256 took
58.7 ms instead of the plain product's 33.4 in ONNX Runtime on 2 cores (2.7 instead of 0.8 at 64x64); the
transpose (10.2 ms) and the coarse product (12.2) alone cost as much as the whole plain product.

Complex tensors are packed: re and im stacked in a dimension of size 2 (``(..., 2, H, W//2+1)``), so each
complex product is ONE real matrix product with a [[re, -im], [im, re]] block matrix and no element-wise
combination passes. Everything is built with ``torch.arange`` over the runtime sizes; integer division is
avoided (``arange(0, n + 1, 2)`` gives 2k for k = 0 .. n//2) since it exports to a long subgraph.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

Size = int | Tensor  # a Python int eagerly, a traced 0-d int64 tensor inside torch.onnx.export


def split(n: Size) -> tuple[Size, Size]:
    """(p, q) with p * q = n and p the largest divisor of n with p * p <= n (so p <= q)."""
    if not isinstance(n, Tensor):
        p = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
        return p, n // p
    d = torch.arange(1, n + 1, device=n.device)
    divides = torch.remainder(n, d) == 0
    p = torch.where(divides & (d * d <= n), d, 1).max()
    q = torch.where(divides & (d * d >= n), d, n).min()
    return p, q


def evens(n: Size, device: torch.device) -> Tensor:
    """2*k for k = 0 .. n//2 (twice the non-negative frequencies of a real signal of length n), int64."""
    return torch.arange(0, n + 1, 2, device=device)


def cis(idx: Tensor, period: Size, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos and sin of 2*pi*(idx mod period)/period: the products in ``idx`` and the remainder are exact
    int64, the angle is formed in float32 (float64 for float64), then cast to ``dtype``."""
    work = torch.float64 if dtype == torch.float64 else torch.float32
    if not isinstance(period, Tensor):  # a tensor divisor exports to Mod
        period = torch.full((), period, dtype=torch.int64, device=idx.device)
    angle = torch.remainder(idx, period).to(work) * (2.0 * math.pi) / period.to(work)
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def _block(mr: Tensor, mi: Tensor, interleave_rows: bool) -> Tensor:
    """The real matrix of the complex matrix mr + i*mi acting on packed (re, im) columns: (..., R, C) ->
    (..., 2R, 2C), columns ordered (re/im, c); rows ordered (r, re/im) if ``interleave_rows`` else
    (re/im, r)."""
    re_row = torch.cat((mr, -mi), dim=-1)
    im_row = torch.cat((mi, mr), dim=-1)
    if interleave_rows:
        return torch.stack((re_row, im_row), dim=-2).flatten(-3, -2)
    return torch.cat((re_row, im_row), dim=-2)


def _cdft(z: Tensor, n: Size, sign: float) -> Tensor:
    """Complex DFT (``sign`` -1: forward, +1: inverse; unnormalised) along dim -2 (size n) of packed
    z (..., 2, n, m), natural order in; out as (..., p, 2, q, m) holding frequency k1 + p*k2 at [k1, :, k2].

    With j = q*a + b: X[k1 + p*k2] = sum_b w_n^(b*(k1 + p*k2)) sum_a w_p^(a*k1) x[q*a + b].
    """
    p, q = split(n)
    jp, jq = torch.arange(p, device=z.device), torch.arange(q, device=z.device)
    c, s = cis(jp[:, None] * jp[None, :], p, z.dtype)  # [k1, a]
    z = z.unflatten(-2, (p, q)).flatten(-4, -3).flatten(-2)  # (..., (re/im, a), (b, m))
    y = torch.matmul(_block(c, sign * s, True), z).unflatten(-1, (q, -1))  # (..., (k1, re/im), b, m)
    c, s = cis(jq[None, None, :] * (jp[:, None, None] + p * jq[None, :, None]), n, z.dtype)  # [k1, k2, b]
    y = torch.matmul(_block(c, sign * s, False), y.unflatten(-3, (p, 2)).flatten(-3, -2))
    return y.unflatten(-2, (2, q))  # (..., k1, re/im, k2, m)


def _rdft_last(x: Tensor, scale: Size | float) -> Tensor:
    """Half spectrum of real x (..., H, W) along W, times ``scale``: packed (..., 2, H, W//2+1)."""
    w = x.shape[-1]
    c, s = cis(torch.arange(w, device=x.device)[:, None] * evens(w, x.device)[None, :], 2 * w, x.dtype)
    return torch.matmul(x.unsqueeze(-3), torch.stack((c, -s)) * scale)  # (2, W, Wf) broadcast


def _irdft_last(z: Tensor, w: Size, scale: Size | float) -> Tensor:
    """C2R along W of z (..., H, 2, W//2+1) (re and im per row), times ``scale``: real (..., H, w).

    Like torch's C2R, the imaginary parts of the zero and (even w) Nyquist frequencies do not contribute.
    """
    k2 = evens(w, z.device)
    c, s = cis(k2[:, None] * torch.arange(w, device=z.device)[None, :], 2 * w, z.dtype)  # (Wf, W)
    # Hermitian weights: 1 for the zero and (even w) Nyquist frequencies, 2 for the others
    weight = (2 - (k2 == 0).to(z.dtype) - (k2 == w).to(z.dtype))[:, None] * scale
    return torch.matmul(z.flatten(-2), torch.cat((c * weight, -s * weight)))


# Leading dims are kept and every reshape is relative (flatten / unflatten / permute): the shapes of
# intermediate tensors are never read, since the ONNX exporter may freeze them to the traced sizes.


def _movedim(t: Tensor, source: int, destination: int) -> Tensor:
    """``t.movedim`` as a permute with non-negative dims (the exporter writes negative ones, which ONNX
    rejects)."""
    dims = list(range(t.dim()))
    dims.insert(destination % t.dim(), dims.pop(source % t.dim()))
    return t.permute(dims)


def rfft2_packed(x: Tensor) -> Tensor:
    """rfftn(x, dim=(-2, -1), norm="ortho") of real x (..., H, W), packed as (..., 2, H, W//2+1)."""
    h, w = x.shape[-2], x.shape[-1]
    y = _cdft(_rdft_last(x, (h * w) ** -0.5), h, -1.0)  # (..., p, 2, q, Wf)
    return _movedim(y, -4, -2).flatten(-3, -2)  # (..., 2, q, p, Wf): frequency k1 + p*k2 in natural order


def irfft2_packed(z: Tensor, size: tuple[Size, Size]) -> Tensor:
    """irfftn(re + i*im, s=size, dim=(-2, -1), norm="ortho") of packed z (..., 2, H, W//2+1)."""
    h, w = size
    y = _cdft(z, h, 1.0)  # (..., p, 2, q, Wf): row j1 + p*j2 at [j1, :, j2]
    y = _movedim(y, -2, -4).flatten(-4, -3)  # (..., H, 2, Wf), H in natural order
    return _irdft_last(y, w, (h * w) ** -0.5)
