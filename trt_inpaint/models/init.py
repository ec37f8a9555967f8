"""A deterministic, per-key initialisation rule for parity fixtures and ``--random-init`` builds.

Each state-dict entry is filled from a numpy generator seeded by (seed, crc32(key)), so the same rule
applied to our model and to an original implementation with the same keys gives the same weights
without storing them. Scales keep activations in a sane range through deep nets:
- weights (ndim >= 2): normal * gain / sqrt(fan_in)
- biases and other 1-D params: normal * 0.02
- BatchNorm running_var: uniform [0.5, 1.5]; running_mean: normal * 0.1; num_batches_tracked untouched
- names ending in "weight" with ndim 1 (norm scales): 1 + normal * 0.1

``gains`` gives some modules (by name) their own gain; ``conv_gains`` computes such gains for plain conv
nets (the light models' ``random_init_`` rules).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import numpy as np
import torch


def init_value(key: str, shape: tuple[int, ...], seed: int = 0, gain: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if leaf == "running_mean":
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:])) or 1
        return (rng.standard_normal(shape) * gain / np.sqrt(fan_in)).astype(np.float32)
    if leaf == "weight" and len(shape) == 1:
        return (1.0 + rng.standard_normal(shape) * 0.1).astype(np.float32)
    return (rng.standard_normal(shape) * 0.02).astype(np.float32)


@torch.no_grad()
def deterministic_init_(
    module: torch.nn.Module, seed: int = 0, gain: float = 1.0, gains: Mapping[str, float] | None = None
) -> torch.nn.Module:
    """Fill every floating-point parameter and buffer of ``module`` by the rule above (in place); the
    weights of a module named in ``gains`` (``named_modules`` names) take that gain instead of ``gain``."""
    gains = gains or {}
    for key, t in module.state_dict(keep_vars=True).items():
        if not t.is_floating_point():
            continue
        g = gains.get(key.rsplit(".", 1)[0], gain)
        t.copy_(torch.from_numpy(np.asarray(init_value(key, tuple(t.shape), seed, g))).to(t.dtype))
    return module


def conv_gains(module: torch.nn.Module, negative_slope: float, out_gain: float) -> dict[str, float]:
    """Gains that keep activations at their scale through a plain conv net with LeakyReLU(negative_slope)
    between layers: He's sqrt(2 / (1 + slope^2)) for every conv but the last, ``out_gain`` for the last
    (the scale fed to the output nonlinearity). The per-key rule takes a weight's fan-in from dims 1.. of
    its shape, which for a transposed conv (in, out, kh, kw) is out * kh * kw; each output value of one
    sums in * kh * kw / (sh * sw) products, so its gain is rescaled by the square root of the ratio."""
    from torch import nn

    convs = [(n, m) for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    he = math.sqrt(2.0 / (1.0 + negative_slope**2))
    out: dict[str, float] = {}
    for i, (name, m) in enumerate(convs):
        g = he if i < len(convs) - 1 else out_gain
        if isinstance(m, nn.ConvTranspose2d):
            taps = m.kernel_size[0] * m.kernel_size[1]
            g *= math.sqrt(m.out_channels * taps / (m.in_channels * taps / (m.stride[0] * m.stride[1])))
        out[name] = g
    return out
