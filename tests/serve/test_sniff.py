"""Formats and sizes from headers only, for every format served, from files real encoders wrote."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.serve.helpers import png_claiming
from trt_inpaint.serve.sniff import BadHeader, ImageFormat, NotAnImage, sniff

W, H = 37, 23


def _pil(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


def _cv(suffix: str, *params) -> bytes:
    return cv2.imencode(suffix, np.zeros((H, W, 3), np.uint8), list(params))[1].tobytes()


CASES = {
    "png": (_cv(".png"), ImageFormat.PNG),
    "jpeg": (_cv(".jpg"), ImageFormat.JPEG),
    "progressive jpeg": (_pil("JPEG", progressive=True), ImageFormat.JPEG),
    "webp lossy": (_pil("WEBP", quality=80), ImageFormat.WEBP),
    "webp lossless": (_pil("WEBP", lossless=True), ImageFormat.WEBP),
    "webp extended": (_pil("WEBP", exif=b"Exif\0\0II*\0"), ImageFormat.WEBP),
    "tiff little-endian": (_cv(".tiff"), ImageFormat.TIFF),
    "tiff big-endian": (
        b"MM\0*"
        + struct.pack(">IH", 8, 2)
        + struct.pack(">HHIHH", 256, 3, 1, W, 0)
        + struct.pack(">HHII", 257, 4, 1, H)
        + b"\0" * 4,
        ImageFormat.TIFF,
    ),
    "bigtiff": (
        b"II+\0"
        + struct.pack("<HHQQ", 8, 0, 16, 2)
        + struct.pack("<HHQQ", 256, 16, 1, W)
        + struct.pack("<HHQQ", 257, 3, 1, H)
        + b"\0" * 8,
        ImageFormat.TIFF,
    ),
    "bmp": (_cv(".bmp"), ImageFormat.BMP),
}


@pytest.mark.parametrize("case", list(CASES))
def test_format_and_size_from_the_header(case):
    data, fmt = CASES[case]
    head = sniff(data)
    assert (head.format, head.width, head.height) == (fmt, W, H)


def test_a_huge_claim_is_read_from_the_first_bytes_only():
    head = sniff(png_claiming(100_000, 100_000)[:33])  # signature + IHDR: nothing else is needed
    assert head.pixels == 10**10


@pytest.mark.parametrize("data", [b"", b"hello world", b"GIF89a" + b"\0" * 20, b"\0" * 64])
def test_anything_else_is_not_an_image(data):
    with pytest.raises(NotAnImage):
        sniff(data)


@pytest.mark.parametrize("case", ["png", "jpeg", "webp lossy", "tiff little-endian", "bmp"])
def test_truncated_headers_are_bad_headers(case):
    data = CASES[case][0]
    cut = {"png": 20, "jpeg": 30, "webp lossy": 26, "tiff little-endian": 12, "bmp": 20}[case]
    with pytest.raises(BadHeader):
        sniff(data[:cut])
