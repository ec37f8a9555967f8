"""torch Datasets over a prepared folder: one sample per (image, mask set), with cached model outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from trt_inpaint.errors import InputError
from trt_inpaint.training.data import Index, Item, read_mask, read_rgb


def to_chw(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


class InpaintSamples(Dataset):
    """Samples ``{"target": (3,H,W), "mask": (1,H,W), <source>: (3,H,W) ...}``, float32 in [0, 1].

    ``sources`` name cached outputs under ``outputs/`` ("lama", "mat"); all must exist (checked up front,
    the error names the first missing file and says to run cache-outputs).
    """

    def __init__(
        self, index: Index, items: Sequence[Item], mask_sets: Sequence[str], sources: Sequence[str] = ()
    ):
        unknown = [s for s in mask_sets if s not in index.mask_sets]
        if unknown:
            raise InputError(f"mask sets {unknown} not prepared here (have {index.mask_sets})", index.root)
        self.index = index
        self.sources = tuple(sources)
        self.pairs = [(it, s) for it in items for s in mask_sets]
        missing = [
            index.output_path(src, it, s)
            for it, s in self.pairs
            for src in self.sources
            if not index.output_path(src, it, s).is_file()
        ]
        if missing:
            raise InputError(
                f"{len(missing)} cached outputs missing (first: {missing[0]}); run cache-outputs first",
                index.root,
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        it, s = self.pairs[i]
        out = {
            "target": to_chw(read_rgb(self.index.image_path(it))),
            "mask": torch.from_numpy(read_mask(self.index.mask_path(it, s)))[None],
        }
        for src in self.sources:
            out[src] = to_chw(read_rgb(self.index.output_path(src, it, s)))
        return out
