"""Step 3, finish: composite the result into the input, encode it in the input's format, write atomically.

CPU only and pool-free, like ``prepare``: any thread or process can finish an item that was run elsewhere.
Only the hole's pixels inside the processed region are written back; every other pixel (and alpha) stays
bit-identical to the input. A JPEG written from a JPEG keeps the input's compressed blocks wherever the
mask does not reach (``jpeg_splice``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.runtime import hd, imaging
from trt_inpaint.runtime.workitem import WorkItem


@dataclass(frozen=True)
class Encoded:
    data: bytes
    suffix: str  # the format written, as a suffix
    note: str | None = None  # one line for the summary (e.g. why a JPEG was re-encoded whole)


def finish(item: WorkItem) -> np.ndarray:
    """The inpainted image, the input's shape and dtype; a copy of the input when the mask is empty.
    Raises the item's error if its run failed."""
    if item.error is not None:
        raise item.error
    if item.geometry is None:
        return item.pixels.copy()
    if item.result is None:
        raise InputError("this work item has not been run: pass it to Inpainter.run first", item.name)
    geo = item.geometry
    out = np.ascontiguousarray(item.result[0].transpose(1, 2, 0))
    return imaging.composite(item.pixels, hd.from_work(out, geo), geo, item.hole)


def written_region(item: WorkItem) -> np.ndarray:
    """Bool HxW: the pixels ``finish`` takes from the result (the hole inside the processed region)."""
    changed = np.zeros(item.hole.shape, bool)
    if item.geometry is not None:
        g = item.geometry
        changed[g.y0 : g.y1, g.x0 : g.x1] = item.hole[g.y0 : g.y1, g.x0 : g.x1]
    return changed


def encode(item: WorkItem, suffix: str | None = None) -> Encoded:
    """The finished image encoded as ``suffix`` (default: the input's format, PNG for arrays).

    An empty mask with the input's own format gives the input file's bytes unchanged."""
    src = item.source
    suffix = (suffix or src.suffix or ".png").lower()
    same = bool(src.suffix) and imaging.same_format(suffix, src.suffix)
    if item.geometry is None and same and src.data and item.error is None:
        return Encoded(src.data, suffix)
    pixels = finish(item)
    if same and suffix in imaging.JPEG_SUFFIXES and src.data:
        from trt_inpaint.runtime.jpeg_splice import splice_jpeg

        spliced = splice_jpeg(src.data, pixels, written_region(item))
        return Encoded(spliced.data, suffix, spliced.note)
    return Encoded(imaging.encode(pixels, suffix, Path(src.name) if src.suffix else None), suffix)


def write(item: WorkItem, path: str | Path) -> Encoded:
    """Encode in the format of ``path``'s suffix (the input's when it has none) and write atomically."""
    path = Path(path)
    enc = encode(item, path.suffix or None)
    imaging.write_bytes(path, enc.data)
    return enc
