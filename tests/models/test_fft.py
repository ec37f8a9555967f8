"""The matrix-product 2-D real FFT against torch.fft (norm "ortho"), odd sizes included."""

from __future__ import annotations

import pytest
import torch

from trt_inpaint.models.fft import (
    FFTImpl,
    irfft2_matmul,
    irfft2_ortho,
    irfft2_torch,
    rfft2_matmul,
    rfft2_ortho,
    rfft2_torch,
)

# (H, W) as seen at 1/8 scale: even, odd (input widths 200 -> 25, 264 -> 33), tiny and non-square
SIZES = [(8, 8), (32, 32), (25, 33), (9, 13), (33, 25), (64, 65), (1, 1), (2, 3), (7, 1)]


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("hw", SIZES)
def test_rfft2_matmul_matches_torch(hw):
    x = _rand(2, 3, *hw)
    re, im = rfft2_matmul(x)
    ref_re, ref_im = rfft2_torch(x)
    assert re.shape == ref_re.shape == (2, 3, hw[0], hw[1] // 2 + 1)
    assert (re - ref_re).abs().max().item() <= 1e-5
    assert (im - ref_im).abs().max().item() <= 1e-5


@pytest.mark.parametrize("hw", SIZES)
def test_irfft2_matmul_matches_torch_on_any_spectrum(hw):
    # a random spectrum is not Hermitian in the zero / Nyquist columns: both must drop the same parts
    h, w = hw
    re, im = _rand(2, 3, h, w // 2 + 1, seed=1), _rand(2, 3, h, w // 2 + 1, seed=2)
    y = irfft2_matmul(re, im, hw)
    ref = irfft2_torch(re, im, hw)
    assert y.shape == ref.shape == (2, 3, h, w)
    assert (y - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("impl", list(FFTImpl))
@pytest.mark.parametrize("hw", [(32, 32), (25, 33), (9, 13)])
def test_round_trip(impl, hw):
    x = _rand(1, 4, *hw, seed=3)
    re, im = rfft2_ortho(x, impl)
    assert (irfft2_ortho(re, im, hw, impl) - x).abs().max().item() <= 1e-5


def test_dispatch_accepts_strings_and_differs_from_a_wrong_transform():
    x = _rand(1, 2, 16, 13, seed=4)
    re_m, im_m = rfft2_ortho(x, "matmul")
    re_t, im_t = rfft2_ortho(x, "torch")
    assert torch.allclose(re_m, re_t, atol=1e-5) and torch.allclose(im_m, im_t, atol=1e-5)
    # the check above can fail: a transposed input gives a different spectrum
    re_wrong, _ = rfft2_matmul(x.transpose(-1, -2).contiguous())
    assert re_wrong.shape != re_t.shape or not torch.allclose(re_wrong, re_t, atol=1e-3)
    with pytest.raises(ValueError):
        rfft2_ortho(x, "cufft")


def test_matrices_follow_the_input_dtype():
    x = _rand(1, 1, 9, 13, seed=5).double()
    re, im = rfft2_matmul(x)
    assert re.dtype == im.dtype == torch.float64
    ref_re, ref_im = rfft2_torch(x)
    assert (re - ref_re).abs().max().item() <= 1e-12
    assert irfft2_matmul(re, im, (9, 13)).dtype == torch.float64
