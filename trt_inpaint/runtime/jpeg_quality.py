"""The quality a JPEG was written at, estimated from its luma quantization table.

Encoders built on the IJG library (libjpeg, libjpeg-turbo, mozjpeg: OpenCV, Pillow, most software) scale
the JPEG standard's example table by a factor set by the quality: 5000 / q below 50, 200 - 2q from 50 up.
The estimate is the quality whose scaled table is nearest to the file's (exact for such files; the
nearest in relative terms for a camera's own tables).
"""

from __future__ import annotations

import numpy as np

from trt_inpaint.runtime.jpeg_segments import Header, parse_header

DEFAULT_QUALITY = 95  # new JPEG outputs, and a file with no table to estimate from

# The example luminance table of the JPEG standard (ITU T.81 Annex K, table K.1), natural order.
_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.int64,
)


def scaled_luma_table(quality: int, baseline: bool = True) -> np.ndarray:
    """The IJG luma table for ``quality`` (1..100); ``baseline`` caps entries at 255 (8-bit tables)."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((_LUMA * scale + 50) // 100, 1, 255 if baseline else 32767)


def quality_of_table(table: np.ndarray, bits: int = 8) -> int:
    """The IJG quality (1..100) whose luma table is nearest to ``table`` (8x8, natural order)."""
    t = np.log(np.maximum(np.asarray(table, np.float64), 1.0))
    best, best_err = DEFAULT_QUALITY, np.inf
    for q in range(100, 0, -1):  # ties go to the higher quality
        err = float(np.square(t - np.log(scaled_luma_table(q, baseline=bits == 8))).sum())
        if err < best_err:
            best, best_err = q, err
    return best


def header_quality(header: Header) -> int | None:
    """The estimated quality of a parsed file: from the table of its first (luma) component."""
    table_id = header.components[0].table
    if table_id not in header.tables:
        return None
    return quality_of_table(header.tables[table_id], header.table_bits[table_id])


def estimate_quality(data: bytes) -> int | None:
    """The estimated quality (1..100) of a JPEG file; None when it has no quantization table (lossless)."""
    return header_quality(parse_header(data))
