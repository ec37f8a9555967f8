"""A JPEG file's quantized DCT coefficients read and written without decoding, through jpeglib.

jpeglib (PyPI) wraps builds of libjpeg; the libjpeg-turbo 2.1 build used here reads baseline, extended,
progressive and arithmetic-coded 8-bit files with any restart interval, and writes sequential files
with optimized Huffman tables. It keeps marker state in C globals and the chosen libjpeg build
process-wide, so every call goes through one lock. Anything it cannot do is an ``Unspliceable`` whose
message says why, for jpeg_splice to fall back on.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_inpaint.runtime.jpeg_blocks import ColourSpace
from trt_inpaint.runtime.jpeg_segments import Header, parse_header

_LIBJPEG = "turbo210"
_LOCK = threading.Lock()
_SPACES = {"JCS_GRAYSCALE": ColourSpace.GREY, "JCS_YCbCr": ColourSpace.YCBCR, "JCS_RGB": ColourSpace.RGB}


class Unspliceable(Exception):
    """The coefficients of a file cannot be read or written here; the message is the reason, one line.

    Internal to the JPEG writer: jpeg_splice turns it into a whole-image re-encode with a note.
    """


@dataclass
class Coefficients:
    """The coefficients of one file: one writable int16 array (rows, cols, 8, 8) per component."""

    space: ColourSpace
    arrays: list[np.ndarray]
    _jpeg: object  # the jpeglib object they belong to, written back by ``write``


def _jpeglib():
    try:
        import jpeglib
    except ImportError as e:
        raise Unspliceable("jpeglib is not installed (pip install jpeglib)") from e
    return jpeglib


def read(original: bytes, header: Header) -> Coefficients:
    """The coefficients of ``original`` (whose parsed header is ``header``)."""
    jpeglib = _jpeglib()
    with _LOCK, tempfile.TemporaryDirectory(prefix="trt-inpaint-jpeg-") as tmp:
        path = Path(tmp) / "in.jpg"
        path.write_bytes(original)
        try:
            with jpeglib.version(_LIBJPEG):
                jpeg = jpeglib.read_dct(str(path))
                jpeg.load()
        except (OSError, RuntimeError, ValueError) as e:
            raise Unspliceable("libjpeg could not read the coefficients") from e
    space = _SPACES.get(getattr(jpeg.jpeg_color_space, "name", ""))
    if space is None:
        raise Unspliceable(f"{jpeg.jpeg_color_space} colour JPEG")
    arrays = [jpeg.Y] if space is ColourSpace.GREY else [jpeg.Y, jpeg.Cb, jpeg.Cr]
    if len(arrays) != len(header.components):
        raise Unspliceable(f"{len(header.components)}-component JPEG read as {space.value}")
    for i, a in enumerate(arrays):
        if a is None or a.shape != (*header.blocks(i), 8, 8):
            raise Unspliceable(f"coefficients of component {i} do not match the frame header")
    return Coefficients(space, arrays, jpeg)


def write(coefficients: Coefficients, header: Header) -> bytes:
    """A sequential JPEG file of the coefficients with the source file's frame and quantization tables.

    Its own APPn segments are whatever libjpeg writes (jpeg_splice replaces them). The result is parsed
    back and checked against ``header``: same size, sampling factors and tables, or Unspliceable.
    """
    jpeglib = _jpeglib()
    jpeg = coefficients._jpeg
    jpeg.Y = coefficients.arrays[0]
    if coefficients.space is not ColourSpace.GREY:
        jpeg.Cb, jpeg.Cr = coefficients.arrays[1], coefficients.arrays[2]
    jpeg.markers = []  # the source's metadata segments go back in by jpeg_splice, byte for byte
    with _LOCK, tempfile.TemporaryDirectory(prefix="trt-inpaint-jpeg-") as tmp:
        path = Path(tmp) / "out.jpg"
        try:
            with jpeglib.version(_LIBJPEG):
                jpeg.write_dct(str(path), flags=["+OPTIMIZE_CODING"])
            data = path.read_bytes()
        except (OSError, RuntimeError, ValueError) as e:
            raise Unspliceable("libjpeg could not write the coefficients") from e
    out = parse_header(data)
    same = (
        (out.height, out.width, out.precision) == (header.height, header.width, header.precision)
        and out.sampling == header.sampling  # equal lengths: zip below is safe
        and all(
            np.array_equal(out.tables.get(o.table), header.tables.get(c.table))
            for o, c in zip(out.components, header.components, strict=True)
        )
    )
    if not same:
        raise Unspliceable("libjpeg wrote a frame or tables that differ from the source file's")
    return data
