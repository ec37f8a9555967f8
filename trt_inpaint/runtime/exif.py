"""EXIF orientation: read the tag from JPEG, PNG, WebP and TIFF bytes, and apply it to pixels.

OpenCV applies the tag only when it drops alpha and bit depth, so the runtime decodes with
IMREAD_UNCHANGED and applies the orientation itself. One exception: OpenCV's TIFF decoder applies the tag
even with IMREAD_UNCHANGED (OpenCV 5.1; its JPEG, PNG and WebP decoders do not), so TIFF bytes go to the
decoder with the tag set to 1 (``without_orientation``) and are turned like every other format.
"""

from __future__ import annotations

import struct

import numpy as np

_ORIENTATION_TAG = 0x0112


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


def _tiff_entry(data: bytes) -> tuple[str, int, int] | None:
    """(byte order, offset of the value, value) of IFD0's orientation entry in TIFF ``data``, or None."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return None
    end = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(end + "I", data, 4)
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack_from(end + "H", data, ifd)
    for i in range(count):
        off = ifd + 2 + 12 * i
        if off + 12 > len(data):
            break
        tag, typ = struct.unpack_from(end + "HH", data, off)
        if tag == _ORIENTATION_TAG and typ == 3:  # SHORT
            (value,) = struct.unpack_from(end + "H", data, off + 8)
            return end, off + 8, value
    return None


def _from_tiff(data: bytes) -> int:
    entry = _tiff_entry(data)
    return entry[2] if entry and 1 <= entry[2] <= 8 else 1


def _strip_exif_header(data: bytes) -> bytes:
    return data[6:] if data.startswith(b"Exif\x00\x00") else data


def _from_jpeg(data: bytes) -> int:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return 1
        marker = data[i + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more metadata
            return 1
        (length,) = struct.unpack_from(">H", data, i + 2)
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            return _from_tiff(data[i + 10 : i + 2 + length])
        i += 2 + length
    return 1


def _from_png(data: bytes) -> int:
    i = 8
    while i + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, i)
        if kind == b"eXIf":
            return _from_tiff(_strip_exif_header(data[i + 8 : i + 8 + length]))
        if kind in (b"IDAT", b"IEND"):
            return 1
        i += 12 + length
    return 1


def _from_webp(data: bytes) -> int:
    i = 12
    while i + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, i)
        if kind == b"EXIF":
            return _from_tiff(_strip_exif_header(data[i + 8 : i + 8 + length]))
        i += 8 + length + (length & 1)
    return 1


def orientation(data: bytes) -> int:
    """The EXIF orientation (1..8) of an encoded image; 1 when absent or unreadable."""
    try:
        if data[:2] == b"\xff\xd8":
            return _from_jpeg(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _from_png(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _from_webp(data)
        if data[:4] in _TIFF_MAGIC:
            return _from_tiff(data)
    except struct.error:
        return 1
    return 1


_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}  # the orientation whose transform undoes each


def without_orientation(data: bytes) -> bytes:
    """The bytes to decode: a TIFF file's orientation entry set to 1 (OpenCV's TIFF decoder would apply it
    itself, and the runtime applies ``orientation(data)`` after decoding); other formats unchanged."""
    try:
        entry = _tiff_entry(data) if data[:4] in _TIFF_MAGIC else None
    except struct.error:
        return data
    if entry is None or entry[2] == 1:
        return data
    end, off, _ = entry
    patched = bytearray(data)
    struct.pack_into(end + "H", patched, off, 1)
    return bytes(patched)


def apply_orientation(image: np.ndarray, value: int) -> np.ndarray:
    """Pixels as displayed for EXIF orientation ``value`` (HxW or HxWxC)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }
    return np.ascontiguousarray(ops.get(value, ops[1])(image))


def undo_orientation(image: np.ndarray, value: int) -> np.ndarray:
    """Upright pixels back to the layout stored in a file with EXIF orientation ``value``."""
    return apply_orientation(image, _INVERSE.get(value, 1))
