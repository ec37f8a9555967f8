"""New pixels into a few quantized DCT blocks of a JPEG file, the way a baseline encoder makes blocks.

Which blocks a map of changed pixels touches, per component and its sampling factors, and the new
quantized coefficients of those blocks: colour conversion (JFIF YCbCr, or none for RGB and grey files),
chroma box downsampling, the 8x8 DCT-II, division by the file's own quantization table. Coefficient
blocks are 8x8 in natural (row-major) order, as libjpeg keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class ColourSpace(Enum):
    """How a file's components relate to RGB pixels."""

    GREY = "grey"
    YCBCR = "YCbCr"
    RGB = "RGB"


_YCBCR = np.array(  # JFIF full-range RGB -> YCbCr (offsets of 128 added on chroma)
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32
)


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) / 2
    m[0] /= np.sqrt(2)
    return m  # orthonormal: coefficients = m @ block @ m.T, with JPEG's own scaling


_DCT2 = np.kron(_dct_matrix(), _dct_matrix()).astype(np.float32)  # on flattened blocks: coef = _DCT2 @ block


@dataclass(frozen=True)
class Layout:
    """A component's place in the frame: its sampling factors, the largest ones, its size in blocks."""

    h: int
    v: int
    hmax: int
    vmax: int
    rows: int
    cols: int

    @property
    def footprint(self) -> tuple[int, int]:
        """Image pixels (rows, columns) one block of this component covers."""
        return 8 * self.vmax // self.v, 8 * self.hmax // self.h


@dataclass(frozen=True)
class Canvas:
    """Pixels and changed map in the file's stored layout, padded to whole MCUs.

    ``pixels`` (Hp, Wp, C), C in (1, 3): the image's last row and column repeated into the padding, as
    libjpeg pads. ``changed`` (Hp, Wp): False in the padding.
    """

    pixels: np.ndarray
    changed: np.ndarray

    @classmethod
    def of(cls, pixels: np.ndarray, changed: np.ndarray, mcu: tuple[int, int]) -> Canvas:
        h, w = changed.shape
        pad = ((0, -h % mcu[0]), (0, -w % mcu[1]))
        x = pixels if pixels.ndim == 3 else pixels[..., None]
        return cls(np.pad(x, (*pad, (0, 0)), mode="edge"), np.pad(changed, pad))

    def _blocks(self, a: np.ndarray, layout: Layout) -> np.ndarray:
        """``a`` (Hp, Wp, ...) viewed as (block rows, fy, block columns, fx, ...) of the component."""
        fy, fx = layout.footprint
        return a.reshape(a.shape[0] // fy, fy, a.shape[1] // fx, fx, *a.shape[2:])

    def touched(self, layout: Layout) -> np.ndarray:
        """Bool (rows, cols): the component's blocks whose footprint holds a changed pixel."""
        return self._blocks(self.changed, layout).any(axis=(1, 3))[: layout.rows, : layout.cols]

    def footprints(self, a: np.ndarray, layout: Layout, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N, fy, fx, ...): what ``a`` (one of this canvas's arrays) holds under each block."""
        return self._blocks(a, layout)[rows, :, cols]


def _component(x: np.ndarray, space: ColourSpace, index: int) -> np.ndarray:
    """Component ``index`` of RGB or grey samples ``x`` (..., C) with C in (1, 3), level-shifted by -128.

    A grey file takes the luma of colour pixels, a colour file the grey replicated.
    """
    if x.shape[-1] == 1:
        grey = x[..., 0] - np.float32(128)
        return np.zeros_like(grey) if space is ColourSpace.YCBCR and index > 0 else grey
    if space is ColourSpace.RGB:
        return x[..., index] - np.float32(128)
    row = 0 if space is ColourSpace.GREY else index
    return x @ _YCBCR[row] - np.float32(0 if row else 128)  # chroma: +128 offset and -128 shift cancel


def _cells(a: np.ndarray, layout: Layout) -> np.ndarray:
    """(N, fy, fx) -> (N, 64, sy * sx): the full-resolution pixels behind each component sample."""
    fy, fx = layout.footprint
    sy, sx = fy // 8, fx // 8
    return a.reshape(-1, 8, sy, 8, sx).transpose(0, 1, 3, 2, 4).reshape(-1, 64, sy * sx)


def recode(
    coefficients: np.ndarray,
    canvas: Canvas,
    space: ColourSpace,
    index: int,
    layout: Layout,
    rows: np.ndarray,
    cols: np.ndarray,
    table: np.ndarray,
) -> np.ndarray:
    """New quantized coefficients (N, 8, 8) int16 of blocks (rows[i], cols[i]) of component ``index``.

    ``coefficients``: those blocks' coefficients in the file (N, 8, 8). Each block's target is its own
    decoded samples (exact, from the file's coefficients) where no changed pixel lies behind a sample,
    and the new pixels converted to the component and box-averaged down to its resolution where one
    does; the target is then quantized with the file's table. Keeping the file's samples around the
    hole spares the known pixels of a touched block a second, blurred round of chroma subsampling.
    """
    n = len(rows)
    q = table.astype(np.float32).reshape(64)
    old = (coefficients.reshape(n, 64) * q) @ _DCT2  # the file's samples (level-shifted), flattened
    x = canvas.footprints(canvas.pixels, layout, rows, cols).astype(np.float32)
    new = _cells(_component(x, space, index), layout).mean(axis=2)
    hit = _cells(canvas.footprints(canvas.changed, layout, rows, cols), layout).any(axis=2)
    delta = np.where(hit, new - old, np.float32(0))
    out = coefficients.reshape(n, 64) + np.rint((delta @ _DCT2.T) / q).astype(np.int32)
    dc = np.clip(out[:, 0], -1024, 1023)  # the range 8-bit samples give; libjpeg refuses wider values
    out = np.clip(out, -1023, 1023)
    out[:, 0] = dc
    return out.astype(np.int16).reshape(n, 8, 8)
