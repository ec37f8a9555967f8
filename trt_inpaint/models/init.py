"""A deterministic, per-key initialisation rule for parity fixtures and ``--random-init`` builds.

Each state-dict entry is filled from a numpy generator seeded by (seed, crc32(key)), so the same rule
applied to our model and to an original implementation with the same keys gives the same weights
without storing them. Scales keep activations in a sane range through deep nets:
- weights (ndim >= 2): normal * gain / sqrt(fan_in)
- biases and other 1-D params: normal * 0.02
- BatchNorm running_var: uniform [0.5, 1.5]; running_mean: normal * 0.1; num_batches_tracked untouched
- names ending in "weight" with ndim 1 (norm scales): 1 + normal * 0.1
"""

from __future__ import annotations

import zlib

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
def deterministic_init_(module: torch.nn.Module, seed: int = 0, gain: float = 1.0) -> torch.nn.Module:
    """Fill every floating-point parameter and buffer of ``module`` by the rule above (in place)."""
    for key, t in module.state_dict(keep_vars=True).items():
        if not t.is_floating_point():
            continue
        t.copy_(torch.from_numpy(np.asarray(init_value(key, tuple(t.shape), seed, gain))).to(t.dtype))
    return module
