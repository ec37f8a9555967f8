"""Write an inpainted JPEG without re-compressing the rest of the picture.

``splice_jpeg`` keeps the input file's quantized DCT coefficients for every block that no changed pixel
falls in, so those pixels decode exactly as the input's, and codes only the touched blocks anew from the
result pixels with the input's own quantization tables and chroma subsampling. The input's metadata
segments (JFIF, EXIF with its orientation tag, ICC profile, XMP, comments) are kept byte for byte, so the
output displays as the input did, except what would show or point at the old picture: the EXIF
thumbnail is blanked and an MPF segment dropped. Entropy coding is done anew (sequential, optimized
Huffman tables).

A file whose coefficients cannot be spliced here (CMYK, 12-bit, lossless, hierarchical, jpeglib missing
or failing) is re-encoded whole at the quality estimated from its luma table, with its subsampling where
OpenCV can write it; the result says so in ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.runtime import exif, jpeg_blocks, jpeg_coefficients
from trt_inpaint.runtime.exif_thumbnail import without_thumbnail
from trt_inpaint.runtime.jpeg_blocks import Canvas, Layout
from trt_inpaint.runtime.jpeg_coefficients import Unspliceable
from trt_inpaint.runtime.jpeg_quality import DEFAULT_QUALITY, header_quality
from trt_inpaint.runtime.jpeg_segments import (
    Header,
    icc_colour_space,
    is_adobe,
    is_icc,
    is_mpf,
    parse_header,
    with_metadata,
)


@dataclass(frozen=True)
class JpegWrite:
    data: bytes  # the encoded output file
    spliced: bool  # True: untouched blocks kept; False: whole image re-encoded (fallback)
    note: str | None  # one line: why it fell back


def _check(pixels: np.ndarray, changed: np.ndarray) -> None:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise InputError(f"JPEG output pixels must be a uint8 array, got {getattr(pixels, 'dtype', pixels)}")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 3))):
        raise InputError(f"JPEG output pixels must be HxW or HxWx3, got shape {pixels.shape}")
    if not isinstance(changed, np.ndarray) or changed.shape != pixels.shape[:2]:
        raise InputError(
            f"changed-pixel map must be a bool array of shape {pixels.shape[:2]}, "
            f"got {getattr(changed, 'shape', changed)}"
        )


def _why_not(header: Header) -> str | None:
    """Why a file's coefficients cannot be spliced, read from its header alone; None when they may be."""
    if header.lossless:
        return "lossless JPEG"
    if header.hierarchical:
        return "hierarchical JPEG"
    if header.precision != 8:
        return f"{header.precision}-bit JPEG"
    if len(header.components) not in (1, 3):
        n = len(header.components)
        return f"{n}-component {'(CMYK or YCCK) ' if n == 4 else ''}JPEG"
    hmax = max(h for h, _ in header.sampling)
    vmax = max(v for _, v in header.sampling)
    if any(hmax % h or vmax % v for h, v in header.sampling):
        return f"JPEG with sampling factors {header.sampling}"
    if any(c.table not in header.tables for c in header.components):
        return "JPEG without the quantization table of a component"
    return None


def _layouts(header: Header) -> list[Layout]:
    hmax = max(h for h, _ in header.sampling)
    vmax = max(v for _, v in header.sampling)
    return [Layout(c.h, c.v, hmax, vmax, *header.blocks(i)) for i, c in enumerate(header.components)]


_CHUNK = 8192  # blocks recoded at once: bounds the working memory (about 30 MB a chunk)


def _splice(original: bytes, header: Header, pixels: np.ndarray, changed: np.ndarray) -> bytes:
    coefs = jpeg_coefficients.read(original, header)
    layouts = _layouts(header)
    canvas = Canvas.of(pixels, changed, (8 * layouts[0].vmax, 8 * layouts[0].hmax))
    for i, (array, layout) in enumerate(zip(coefs.arrays, layouts, strict=True)):
        rows, cols = np.nonzero(canvas.touched(layout))
        table = header.tables[header.components[i].table]
        for k in range(0, len(rows), _CHUNK):
            r, c = rows[k : k + _CHUNK], cols[k : k + _CHUNK]
            array[r, c] = jpeg_blocks.recode(array[r, c], canvas, coefs.space, i, layout, r, c, table)
    return with_metadata(jpeg_coefficients.write(coefs, header), _carried(header.metadata))


def _carried(metadata: tuple[bytes, ...]) -> list[bytes]:
    """The metadata segments an edited image keeps: all but MPF (it points at images stored after the
    input's coded image, which the output does not carry), with the EXIF thumbnail blanked."""
    return [without_thumbnail(s) for s in metadata if not is_mpf(s)]


# (h, v) of luma with 1x1 chroma -> OpenCV's subsampling setting
_CV_SAMPLING = {
    (1, 1): cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    (2, 1): cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    (2, 2): cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    (1, 2): cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
    (4, 1): cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411,
}


def _reencode(header: Header, pixels: np.ndarray, reason: str) -> JpegWrite:
    """The whole image encoded by OpenCV at the file's estimated quality, with the file's metadata."""
    quality = header_quality(header)
    grey = len(header.components) == 1
    colour = pixels.ndim == 3 and pixels.shape[2] == 3
    flat = pixels if pixels.ndim == 2 else pixels[..., 0]
    if grey:
        image = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY) if colour else flat
    else:
        image = pixels[..., ::-1] if colour else cv2.cvtColor(flat, cv2.COLOR_GRAY2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality or DEFAULT_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    sampling = header.sampling
    if not grey and all(s == (1, 1) for s in sampling[1:]) and sampling[0] in _CV_SAMPLING:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _CV_SAMPLING[sampling[0]]]
    try:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image), params)
    except cv2.error as e:
        raise InputError(f"cannot encode the JPEG output: {e.msg}") from e
    if not ok:
        raise InputError("cannot encode the JPEG output")
    space = b"GRAY" if grey else b"RGB "
    icc_ok = all(icc_colour_space(s) in (None, space) for s in header.metadata)
    # Adobe APP14 states the old components' colour transform; an ICC profile for another colour space
    # (CMYK) does not describe the new pixels: both go, everything else stays.
    keep = [s for s in _carried(header.metadata) if not is_adobe(s) and (icc_ok or not is_icc(s))]
    said = (
        f"estimated quality {quality}"
        if quality
        else f"quality {DEFAULT_QUALITY} (no table to estimate from)"
    )
    return JpegWrite(with_metadata(buf.tobytes(), keep), False, f"{reason}: re-encoded at {said}")


def splice_jpeg(original: bytes, pixels: np.ndarray, changed: np.ndarray) -> JpegWrite:
    """The output JPEG for an inpainted ``original``.

    ``pixels``: the full result, upright (EXIF orientation applied), RGB HxWx3 or grey HxW uint8.
    ``changed``: bool HxW, the pixels the runtime wrote; all others equal the decoded input.
    """
    _check(pixels, changed)
    header = parse_header(original)
    value = exif.orientation(original)
    stored = exif.undo_orientation(pixels, value)
    stored_changed = exif.undo_orientation(np.asarray(changed, bool), value)
    if stored.shape[:2] != (header.height, header.width):
        raise InputError(
            f"JPEG output pixels are {pixels.shape[1]}x{pixels.shape[0]} upright, but the input JPEG is "
            f"{header.width}x{header.height} stored with EXIF orientation {value}"
        )
    if not stored_changed.any():
        return JpegWrite(bytes(original), True, None)
    reason = _why_not(header)
    if reason is None:
        try:
            return JpegWrite(_splice(original, header, stored, stored_changed), True, None)
        except Unspliceable as e:
            reason = str(e)
    return _reencode(header, stored, reason)
