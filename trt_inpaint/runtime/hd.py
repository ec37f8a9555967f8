"""How a full-size image maps to the stages' working size (like IOPaint's HD strategies).

- CROP: a square around the mask's bounding box plus ``crop_margin`` on each side (at least the working
  size, clipped to the image), padded to a square by reflection and resized to the working size.
- RESIZE: the whole image, padded to a square by reflection and resized to the working size.
- ORIGINAL: the whole image at its own resolution, padded by reflection to the sizes the stages accept
  (a multiple of 8; 512x512 exactly when the pipeline holds a fixed-size stage such as MAT).

A region smaller than the working size is padded to it, never upscaled. Only masked pixels ever go back
into the image (see ``imaging.composite``), so pixels outside the mask stay bit-identical.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import StageSpec

WORK_SIZE = 512  # MAT's size; the working resolution of the crop and resize strategies


class HdStrategy(str, enum.Enum):
    CROP = "crop"
    RESIZE = "resize"
    ORIGINAL = "original"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class HdConfig:
    strategy: HdStrategy
    crop_margin: int  # pixels around the mask's box (the default lives in runtime.options)
    work_size: int = WORK_SIZE


@dataclass(frozen=True)
class Geometry:
    """Where the working tensor comes from: ``image[y0:y1, x0:x1]``, padded, then resized to ``work``."""

    y0: int
    y1: int
    x0: int
    x1: int
    pad: tuple[int, int, int, int]  # top, bottom, left, right (reflection)
    work: tuple[int, int]  # (height, width) fed to the stages

    @property
    def padded(self) -> tuple[int, int]:
        t, b, left, r = self.pad
        return self.y1 - self.y0 + t + b, self.x1 - self.x0 + left + r


def mask_bbox(hole: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), end exclusive, of the True pixels; None when there are none."""
    rows = np.flatnonzero(hole.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(hole.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _square_pad(h: int, w: int, side: int) -> tuple[int, int, int, int]:
    top, left = (side - h) // 2, (side - w) // 2
    return top, side - h - top, left, side - w - left


def _span(lo: int, hi: int, side: int, limit: int) -> tuple[int, int]:
    """A window of ``side`` (<= limit) that contains [lo, hi), centred on it, inside [0, limit)."""
    start = lo - (side - (hi - lo)) // 2
    start = min(max(start, 0), limit - side)
    return start, start + side


def plan(height: int, width: int, hole: np.ndarray, config: HdConfig, stages: list[StageSpec]) -> Geometry:
    """The geometry for one image. ``hole`` is the full-size boolean mask (not empty)."""
    fixed = {s.fixed_size for s in stages if s.fixed_size is not None}
    multiple = max([s.size_multiple for s in stages if s.fixed_size is None] or [8])
    ws = config.work_size
    if config.strategy is HdStrategy.ORIGINAL:
        if fixed:
            size = max(fixed)
            if height > size or width > size:
                names = ", ".join(s.name for s in stages if s.fixed_size is not None)
                raise InputError(
                    f"hd-strategy original needs an image of at most {size}x{size} for stage {names}, "
                    f"got {width}x{height}: use --hd-strategy crop or resize"
                )
            ph, pw = size, size
        else:
            ph, pw = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        return Geometry(0, height, 0, width, (0, ph - height, 0, pw - width), (ph, pw))
    if config.strategy is HdStrategy.RESIZE:
        y0, y1, x0, x1 = 0, height, 0, width
    else:
        by0, by1, bx0, bx1 = mask_bbox(hole)
        side = max(by1 - by0, bx1 - bx0) + 2 * config.crop_margin
        side = max(side, ws)
        y0, y1 = _span(by0, by1, min(side, height), height)
        x0, x1 = _span(bx0, bx1, min(side, width), width)
    h, w = y1 - y0, x1 - x0
    side = max(h, w, ws)
    return Geometry(y0, y1, x0, x1, _square_pad(h, w, side), (ws, ws))


def to_work(array: np.ndarray, geo: Geometry, *, is_mask: bool) -> np.ndarray:
    """Cut, pad and resize an HxW or HxWxC float32 array to the working size.

    Masks are area-averaged and any covered pixel stays a hole, so a thin stroke never vanishes.
    """
    region = np.ascontiguousarray(array[geo.y0 : geo.y1, geo.x0 : geo.x1])
    t, b, left, r = geo.pad
    if any(geo.pad):
        region = cv2.copyMakeBorder(region, t, b, left, r, cv2.BORDER_REFLECT)
    if region.shape[:2] != geo.work:
        region = cv2.resize(region, geo.work[::-1], interpolation=cv2.INTER_AREA)
        if is_mask:
            region = (region > 0).astype(np.float32)
    return region


def from_work(array: np.ndarray, geo: Geometry) -> np.ndarray:
    """Inverse of ``to_work`` for an HxWxC float32 stage output: resize back and drop the padding."""
    ph, pw = geo.padded
    if array.shape[:2] != (ph, pw):
        array = cv2.resize(array, (pw, ph), interpolation=cv2.INTER_CUBIC)
    t, _, left, _ = geo.pad
    return array[t : t + geo.y1 - geo.y0, left : left + geo.x1 - geo.x0]
