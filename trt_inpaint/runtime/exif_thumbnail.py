"""Blank the thumbnail an EXIF segment carries, in place, so it cannot show what was painted out.

Cameras store a small JPEG of the picture in the EXIF block's second directory (IFD1); file browsers show
it instead of the picture. After inpainting it would still show the removed content. This unlinks IFD1
from IFD0 and overwrites the thumbnail's bytes with zeros; the segment keeps its length and every other
offset in it, so the rest of the EXIF data (orientation included) reads as before.
"""

from __future__ import annotations

import struct

_EXIF = b"Exif\x00\x00"
_THUMB_OFFSET, _THUMB_LENGTH = 0x0201, 0x0202  # JPEGInterchangeFormat, JPEGInterchangeFormatLength


def _entries(tiff: bytes | bytearray, end: str, ifd: int) -> tuple[dict[int, int], int] | None:
    """{tag: value} of an IFD's SHORT/LONG single values, and where its next-IFD offset sits."""
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(end + "H", tiff, ifd)
    next_at = ifd + 2 + 12 * count
    if next_at + 4 > len(tiff):
        return None
    values = {}
    for i in range(count):
        tag, typ, n = struct.unpack_from(end + "HHI", tiff, ifd + 2 + 12 * i)
        if n == 1 and typ in (3, 4):  # SHORT, LONG
            values[tag] = struct.unpack_from(end + ("H" if typ == 3 else "I"), tiff, ifd + 10 + 12 * i)[0]
    return values, next_at


def without_thumbnail(segment: bytes) -> bytes:
    """An APP1 EXIF segment with its IFD1 thumbnail blanked; any other or unreadable segment unchanged."""
    if segment[1:2] != b"\xe1" or segment[4:10] != _EXIF or segment[10:12] not in (b"II", b"MM"):
        return segment
    out = bytearray(segment)
    tiff = memoryview(out)[10:]
    end = "<" if segment[10:12] == b"II" else ">"
    (ifd0,) = struct.unpack_from(end + "I", tiff, 4)
    first = _entries(tiff, end, ifd0)
    if first is None:
        return segment
    _, next_at = first
    (ifd1,) = struct.unpack_from(end + "I", tiff, next_at)
    second = _entries(tiff, end, ifd1) if ifd1 else None
    if second is None:
        return segment
    values, _ = second
    start, length = values.get(_THUMB_OFFSET, 0), values.get(_THUMB_LENGTH, 0)
    if 0 < start < len(tiff):
        stop = min(start + length, len(tiff))
        tiff[start:stop] = bytes(stop - start)
    struct.pack_into(end + "I", tiff, next_at, 0)  # IFD0 is the last directory now
    del tiff
    return bytes(out)
