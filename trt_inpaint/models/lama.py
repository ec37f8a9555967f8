"""LaMa's FFC ResNet generator (big-LaMa configuration by default), state-dict compatible with the official
``FFCResNetGenerator`` (keys ``model.0`` ... ``model.35``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from trt_inpaint.errors import InputError
from trt_inpaint.models.ffc import FFC_BN_ACT, ConcatTupleLayer, FFCResnetBlock, set_fft
from trt_inpaint.models.fft import FFTImpl
from trt_inpaint.models.init import deterministic_init_

__all__ = ["FFTImpl", "LamaGenerator", "checkpoint_filter_fn", "lama_big", "lama_tiny"]

GENERATOR_PREFIX = "generator."


class LamaGenerator(nn.Module):
    """x (N, 4, H, W) = cat(image * (1 - mask), mask), H and W multiples of 2**n_downsampling
    -> raw sigmoid prediction (N, output_nc, H, W) in [0, 1]. No compositing here."""

    def __init__(
        self,
        input_nc: int = 4,
        output_nc: int = 3,
        ngf: int = 64,
        n_downsampling: int = 3,
        n_blocks: int = 18,
        max_features: int = 1024,
        ratio_g: float = 0.75,
        fft: FFTImpl = FFTImpl.TORCH,
    ):
        super().__init__()
        fft = FFTImpl(fft)
        self.n_downsampling = n_downsampling
        self.input_nc = input_nc

        def feats(n: int) -> int:
            return min(max_features, n)

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FFC_BN_ACT(input_nc, ngf, kernel_size=7, ratio_gin=0, ratio_gout=0, fft=fft),
        ]
        for i in range(n_downsampling):
            last = i == n_downsampling - 1
            layers.append(
                FFC_BN_ACT(
                    feats(ngf * 2**i),
                    feats(ngf * 2 ** (i + 1)),
                    kernel_size=3,
                    ratio_gin=0,
                    ratio_gout=ratio_g if last else 0,
                    stride=2,
                    padding=1,
                    fft=fft,
                )  # fmt: skip
            )
        bottleneck = feats(ngf * 2**n_downsampling)
        layers += [FFCResnetBlock(bottleneck, ratio_g, fft=fft) for _ in range(n_blocks)]
        layers.append(ConcatTupleLayer())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            cin, cout = feats(ngf * mult), feats(ngf * mult // 2)
            layers += [
                nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            self.check_input(x)
        return self.model(x)

    def check_input(self, x: Tensor) -> None:
        """Raise InputError unless x is (N, input_nc, H, W) with H and W multiples of 2**n_downsampling."""
        step = 2**self.n_downsampling
        if x.dim() != 4 or x.shape[1] != self.input_nc or x.shape[2] % step or x.shape[3] % step:
            raise InputError(
                f"LaMa input must be (N, {self.input_nc}, H, W) with H and W multiples of {step},"
                f" got {tuple(x.shape)}"
            )

    def set_fft(self, impl: FFTImpl) -> LamaGenerator:
        """Switch the FFT implementation of every Fourier unit (same weights). Returns self."""
        set_fft(self, impl)
        return self


def checkpoint_filter_fn(
    state_dict: Mapping[str, Tensor], model: nn.Module | None = None
) -> dict[str, Tensor]:
    """Generator weights from a LaMa checkpoint's state dict.

    A Lightning-style dict (keys prefixed ``generator.``, plus discriminator / evaluator / loss keys) gives
    its ``generator.`` entries with the prefix stripped; a plain generator dict passes through unchanged.
    ``model`` is accepted for the timm-style signature and not used. Pure: the input is not modified.
    """
    del model
    if any(k.startswith(GENERATOR_PREFIX) for k in state_dict):
        n = len(GENERATOR_PREFIX)
        return {k[n:]: v for k, v in state_dict.items() if k.startswith(GENERATOR_PREFIX)}
    return dict(state_dict)


def random_init_(model: LamaGenerator, seed: int = 0) -> LamaGenerator:
    """Seeded random weights for ``--random-init`` exports and tests: the per-key rule at a gain set by the
    depth (the number of FFC residual blocks).

    big-LaMa (18 blocks): at gain 1 activations grow about 1.6x per residual block and 99% of its outputs
    saturate at exactly 0 or 1; at 0.7 the output spreads over (0, 1) (std about 0.13 at 256x256).
    ``lama_tiny`` (2 blocks): at 0.7 its output is constant (hole std 0.003 on the shipped photos), at 1.2
    it spreads (hole std 0.11-0.15 at 256 and 768, none saturated), at 1.4 40 % saturate.
    """
    blocks = sum(isinstance(m, FFCResnetBlock) for m in model.modules())
    return deterministic_init_(model, seed, gain=0.7 if blocks > 2 else 1.2)


def lama_big(**kw) -> LamaGenerator:
    """big-LaMa (configs/training/big-lama.yaml): ngf 64, 3 downsamplings, 18 FFC blocks, 51.0M params."""
    return LamaGenerator(**kw)


def lama_tiny(**kw) -> LamaGenerator:
    """A small generator of the same structure for fast tests (ngf 8, 2 blocks, max 64 features)."""
    cfg = dict(ngf=8, n_blocks=2, max_features=64)
    cfg.update(kw)
    return LamaGenerator(**cfg)


@torch.no_grad()
def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
