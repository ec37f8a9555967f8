"""Helpers shared by the checkpoint tests."""

from __future__ import annotations

import torch


def same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Exact equality with dtype and shape (torch.testing.assert_close costs seconds on first use)."""
    assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), (a, b)


@torch.no_grad()
def seeded_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Distinct, reproducible values in every floating-point parameter and buffer."""
    g = torch.Generator().manual_seed(seed)
    for t in module.state_dict(keep_vars=True).values():
        if t.is_floating_point():
            t.copy_(torch.randn(t.shape, generator=g))
    return module
