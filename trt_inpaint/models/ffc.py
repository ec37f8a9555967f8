"""Fast Fourier Convolution blocks (Chi et al., NeurIPS 2020) as used by LaMa's generator.

Features travel as a (local, global) pair; a branch with no channels is ``None``. Module and parameter
names follow the official LaMa implementation so that its state dicts load unchanged. Only what big-LaMa
uses is implemented: stride-1 spectral transforms without the local Fourier unit (LFU).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trt_inpaint.models.fft import FFTImpl, irfft2_packed, rfft2_packed

Pair = tuple[Tensor, Tensor | None]


def _as_pair(x: Tensor | Pair) -> tuple[Tensor | None, Tensor | None]:
    return (x, None) if isinstance(x, Tensor) else x


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


class FourierUnit(nn.Module):
    """rfft2 -> interleave (re, im) per channel -> 1x1 conv -> BN -> ReLU -> de-interleave -> irfft2."""

    def __init__(self, in_channels: int, out_channels: int, fft: FFTImpl = FFTImpl.TORCH):
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)
        self.fft = FFTImpl(fft)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        # packed (N, C, 2, H, W//2+1) -> channels ordered [c0.re, c0.im, c1.re, c1.im, ...]
        spec = rfft2_packed(x, self.fft).flatten(1, 2)
        spec = self.relu(self.bn(self.conv_layer(spec)))
        return irfft2_packed(spec.unflatten(1, (-1, 2)), (h, w), self.fft)


class SpectralTransform(nn.Module):
    """conv1 (1x1 in -> out/2, BN, ReLU); y = x + fu(x); conv2 (1x1 out/2 -> out)."""

    def __init__(self, in_channels: int, out_channels: int, fft: FFTImpl = FFTImpl.TORCH):
        super().__init__()
        half = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, half, kernel_size=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(half, half, fft)
        self.conv2 = nn.Conv2d(half, out_channels, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Four branches: out_l = l2l(x_l) + g2l(x_g), out_g = l2g(x_l) + g2g(x_g) (spectral)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        padding_mode: str = "reflect",
        fft: FFTImpl = FFTImpl.TORCH,
    ):
        super().__init__()
        in_cg = int(in_channels * ratio_gin)
        in_cl = in_channels - in_cg
        out_cg = int(out_channels * ratio_gout)
        out_cl = out_channels - out_cg
        self.global_in_num = in_cg

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(
                cin, cout, kernel_size, stride, padding, dilation, bias=False, padding_mode=padding_mode
            )

        self.convl2l = conv(in_cl, out_cl)
        self.convl2g = conv(in_cl, out_cg)
        self.convg2l = conv(in_cg, out_cl)
        if in_cg and out_cg:
            if stride != 1:
                raise ValueError("spectral transform supports stride 1 only")
            self.convg2g: SpectralTransform | None = SpectralTransform(in_cg, out_cg, fft)
        else:
            self.convg2g = None

    def forward(self, x: Tensor | Pair) -> tuple[Tensor | None, Tensor | None]:
        x_l, x_g = _as_pair(x)
        out_l = out_g = None
        if self.convl2l is not None and x_l is not None:
            out_l = self.convl2l(x_l)
        if self.convg2l is not None and x_g is not None:
            out_l = _add(out_l, self.convg2l(x_g))
        if self.convl2g is not None and x_l is not None:
            out_g = self.convl2g(x_l)
        if self.convg2g is not None and x_g is not None:
            out_g = _add(out_g, self.convg2g(x_g))
        return out_l, out_g


class FFC_BN_ACT(nn.Module):
    """FFC followed by BatchNorm and an activation on each non-empty branch."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        padding_mode: str = "reflect",
        fft: FFTImpl = FFTImpl.TORCH,
    ):
        super().__init__()
        self.ffc = FFC(
            in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding, dilation,
            padding_mode, fft,
        )  # fmt: skip
        out_cg = int(out_channels * ratio_gout)
        out_cl = out_channels - out_cg
        self.bn_l = nn.BatchNorm2d(out_cl) if out_cl else None
        self.bn_g = nn.BatchNorm2d(out_cg) if out_cg else None
        self.act_l = nn.ReLU(inplace=True)
        self.act_g = nn.ReLU(inplace=True)

    def forward(self, x: Tensor | Pair) -> tuple[Tensor | None, Tensor | None]:
        x_l, x_g = self.ffc(x)
        if x_l is not None and self.bn_l is not None:
            x_l = self.act_l(self.bn_l(x_l))
        if x_g is not None and self.bn_g is not None:
            x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Two 3x3 FFC_BN_ACT layers with a residual connection on both branches."""

    def __init__(self, dim: int, ratio_g: float, dilation: int = 1, fft: FFTImpl = FFTImpl.TORCH):
        super().__init__()
        kw = dict(kernel_size=3, ratio_gin=ratio_g, ratio_gout=ratio_g, padding=dilation, dilation=dilation)
        self.conv1 = FFC_BN_ACT(dim, dim, fft=fft, **kw)
        self.conv2 = FFC_BN_ACT(dim, dim, fft=fft, **kw)

    def forward(self, x: Tensor | Pair) -> tuple[Tensor | None, Tensor | None]:
        id_l, id_g = _as_pair(x)
        x_l, x_g = self.conv2(self.conv1((id_l, id_g)))
        return _add(id_l, x_l), _add(id_g, x_g)


class ConcatTupleLayer(nn.Module):
    """(local, global) -> one tensor, concatenated along channels."""

    def forward(self, x: Tensor | Pair) -> Tensor:
        x_l, x_g = _as_pair(x)
        if x_l is None or x_g is None:
            out = x_g if x_l is None else x_l
            if out is None:
                raise ValueError("ConcatTupleLayer got two empty branches")
            return out
        return torch.cat((x_l, x_g), dim=1)


def set_fft(module: nn.Module, impl: FFTImpl) -> None:
    """Switch every FourierUnit inside ``module`` to ``impl`` (weights untouched)."""
    impl = FFTImpl(impl)
    for m in module.modules():
        if isinstance(m, FourierUnit):
            m.fft = impl
