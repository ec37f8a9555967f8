"""State-dict key helpers shared by the light models' checkpoint filters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

STRIP_PREFIXES = ("module.", "model.")


def strip_common_prefix(state_dict: Mapping[str, Tensor], prefixes: Sequence[str] = STRIP_PREFIXES) -> dict:
    """A new dict with any prefix that EVERY key shares removed, repeatedly ('module.model.x' -> 'x')."""
    out = dict(state_dict)
    stripped = True
    while out and stripped:
        stripped = False
        for p in prefixes:
            if all(k.startswith(p) for k in out):
                out = {k[len(p) :]: v for k, v in out.items()}
                stripped = True
    return out
