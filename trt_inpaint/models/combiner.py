"""The paper's combiner: a U-Net WITHOUT skip connections working in HVI space.

forward(lama_rgb, mat_rgb, mask): both RGB images go through ONE HVITransform (one trainable k), are
concatenated with the mask (1 = hole; optional), pass a stem conv, three down blocks, three up blocks and a
head conv (LeakyReLU throughout; no skip or residual connections, as the paper says); the head's output is
bounded (tanh on H and V, sigmoid on I: our choice, the paper gives no detail) and brought back to RGB by
the inverse transform, clamped to [0, 1]. H and W must be multiples of 8.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from trt_inpaint.models.hvi import HVITransform
from trt_inpaint.models.init import conv_gains, deterministic_init_
from trt_inpaint.models.keys import strip_common_prefix

# the head's gain in ``random_init_``: output hole std 0.12-0.22 at 512x512 on the shipped photos
# (full-size widths, seeds 0-3); larger gains saturate more of the bounded HVI output
RANDOM_OUT_GAIN = 1.5


def _conv(cin: int, cout: int, slope: float, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(slope)]


class Combiner(nn.Module):
    """``widths``: (stem, level 1, level 2, level 3); a down block halves H and W, an up block doubles."""

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        negative_slope: float = 0.2,
        use_mask: bool = True,
        k: float = 0.2,
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4:
            raise ValueError(f"Combiner takes four widths (stem + three levels), got {widths}")
        self.widths, self.negative_slope, self.use_mask = widths, negative_slope, use_mask
        self.hvi = HVITransform(k=k)
        in_channels = 6 + int(use_mask)
        self.stem = nn.Sequential(*_conv(in_channels, widths[0], negative_slope))
        self.down = nn.ModuleList(
            nn.Sequential(*_conv(cin, cout, negative_slope, stride=2), *_conv(cout, cout, negative_slope))
            for cin, cout in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1),
                nn.LeakyReLU(negative_slope),
                *_conv(cout, cout, negative_slope),
            )
            for cin, cout in zip(widths[:0:-1], widths[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, lama_rgb: Tensor, mat_rgb: Tensor, mask: Tensor) -> Tensor:
        parts = [self.hvi(lama_rgb), self.hvi(mat_rgb)]
        if self.use_mask:
            parts.append(mask.to(lama_rgb.dtype))
        x = self.stem(torch.cat(parts, dim=1))
        for block in self.down:
            x = block(x)
        for block in self.up:
            x = block(x)
        out = self.head(x)
        # bounded HVI: H, V in (-1, 1), I in (0, 1) (the inverse's clamps would stop the gradient outside)
        hvi = torch.cat([torch.tanh(out[:, :2]), torch.sigmoid(out[:, 2:])], dim=1)
        return self.hvi.inverse(hvi).clamp(0.0, 1.0)


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor], model: Combiner | None = None) -> dict:
    """Pure: return the combiner's own state dict from a saved one (drops a common 'module.'/'model.' prefix).

    ``model`` is accepted for the common filter-function signature; it is not modified.
    """
    return strip_common_prefix(state_dict)


@torch.no_grad()
def random_init_(model: Combiner, seed: int = 0) -> Combiner:
    """Seeded random weights for ``--random-init`` exports and tests: the per-key rule with He gains
    (``init.conv_gains``), ``RANDOM_OUT_GAIN`` on the head, and the HVI density k kept at its constructed
    value (the per-key rule would make it ~N(0, 0.02)). The plain rule gives a nearly constant output
    (hole std 0.006 at 512x512)."""
    k = model.hvi.density_k.detach().clone()
    deterministic_init_(model, seed, gains=conv_gains(model, model.negative_slope, RANDOM_OUT_GAIN))
    model.hvi.density_k.copy_(k)
    return model


def combiner_default() -> Combiner:
    """The size used in the ensemble: widths (32, 64, 128, 256), about 2M parameters."""
    return Combiner(widths=(32, 64, 128, 256))


def combiner_tiny() -> Combiner:
    """For tests."""
    return Combiner(widths=(8, 8, 16, 16))
