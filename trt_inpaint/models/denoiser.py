"""The paper's denoiser: three stride-2 convs + LeakyReLU, three transposed convs, sigmoid at the end.

Used twice in the ensemble (on LaMa's output and on the combiner's output), with separate weights.
Input H and W must be multiples of 8; the output has the input's size, values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from trt_inpaint.models.init import conv_gains, deterministic_init_
from trt_inpaint.models.keys import strip_common_prefix

# the last layer's gain in ``random_init_``: pre-sigmoid values spread enough for an output hole std of
# 0.14-0.24 at 512x512 on the shipped photos (full-size widths, seeds 0-3), with < 2 % saturated
RANDOM_OUT_GAIN = 2.0


class Denoiser(nn.Module):
    """Encoder: Conv(k3, s2) + LeakyReLU x 3 over ``widths``; decoder: ConvTranspose(k4, s2, p1) x 3
    (LeakyReLU after the first two), then sigmoid."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        negative_slope: float = 0.2,
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 3:
            raise ValueError(f"Denoiser takes three widths (one per stride-2 level), got {widths}")
        self.in_channels, self.out_channels, self.widths = in_channels, out_channels, widths
        self.negative_slope = negative_slope
        chans = (in_channels, *widths)
        enc: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            enc += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(negative_slope)]
        self.encoder = nn.Sequential(*enc)
        back = (*widths[::-1], out_channels)
        dec: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(back[:-1], back[1:], strict=True)):
            dec.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            if i < 2:
                dec.append(nn.LeakyReLU(negative_slope))
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor], model: Denoiser | None = None) -> dict:
    """Pure: return the denoiser's own state dict from a saved one (drops a common 'module.'/'model.' prefix).

    ``model`` is accepted for the common filter-function signature; it is not modified.
    """
    return strip_common_prefix(state_dict)


def random_init_(model: Denoiser, seed: int = 0) -> Denoiser:
    """Seeded random weights for ``--random-init`` exports and tests: the per-key rule with He gains
    (``init.conv_gains``) and ``RANDOM_OUT_GAIN`` on the last layer. The plain rule (gain 1 everywhere)
    shrinks activations at every LeakyReLU and gives a nearly constant output (hole std 0.014 at 512x512),
    against which any fidelity comparison passes."""
    return deterministic_init_(model, seed, gains=conv_gains(model, model.negative_slope, RANDOM_OUT_GAIN))


def denoiser_default() -> Denoiser:
    """The size used in the ensemble: widths (32, 64, 128), about 0.3M parameters."""
    return Denoiser(widths=(32, 64, 128))


def denoiser_tiny() -> Denoiser:
    """For tests."""
    return Denoiser(widths=(8, 8, 16))
