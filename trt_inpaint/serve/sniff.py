"""Image formats and sizes from the first bytes of a file, before anything is decoded.

The format comes from the bytes (never a file name or a client's content type); the width and height from
the format's header: PNG's IHDR, JPEG's SOFn segment, WebP's VP8/VP8L/VP8X chunk, TIFF's first IFD (classic
and BigTIFF), BMP's DIB header. Nothing is allocated for the pixels, so a header that claims
100000x100000 is refused for what it claims. Anything else is not one of the formats served.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass


class ImageFormat(str, enum.Enum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"
    TIFF = "tiff"
    BMP = "bmp"

    def __str__(self) -> str:
        return self.value

    @property
    def suffix(self) -> str:
        return ".jpg" if self is ImageFormat.JPEG else f".{self.value}"

    @property
    def media_type(self) -> str:
        return f"image/{self.value}"

    @classmethod
    def of_suffix(cls, suffix: str) -> ImageFormat:
        s = suffix.lower().lstrip(".")
        return {"jpg": cls.JPEG, "jpe": cls.JPEG, "tif": cls.TIFF}.get(s) or cls(s)


class NotAnImage(ValueError):
    """The bytes are none of the formats above."""


class BadHeader(ValueError):
    """The bytes start like a format but its header is truncated or inconsistent."""


@dataclass(frozen=True)
class Header:
    format: ImageFormat
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def sniff(data: bytes) -> Header:
    """The format and size of an encoded image. NotAnImage or BadHeader (one line) otherwise."""
    for fmt, test, read in _READERS:
        if test(data):
            try:
                width, height = read(data)
            except (struct.error, IndexError):
                raise BadHeader(f"truncated {fmt.name} header") from None
            if width <= 0 or height <= 0:
                raise BadHeader(f"{fmt.name} header gives a size of {width}x{height}")
            return Header(fmt, width, height)
    raise NotAnImage("not a PNG, JPEG, WebP, TIFF or BMP file (judged by its bytes)")


def _png(d: bytes) -> tuple[int, int]:
    if d[12:16] != b"IHDR":
        raise BadHeader("PNG without an IHDR chunk first")
    return struct.unpack(">II", d[16:24])


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(d: bytes) -> tuple[int, int]:
    i = 2
    while True:
        if d[i] != 0xFF:
            raise BadHeader(f"JPEG: no marker at byte {i}")
        while d[i] == 0xFF:  # fill bytes
            i += 1
        marker = d[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        if marker in (0xD9, 0xDA):
            raise BadHeader("JPEG: no frame header (SOFn) before the scan")
        (length,) = struct.unpack(">H", d[i : i + 2])
        if marker in _SOF:
            height, width = struct.unpack(">HH", d[i + 3 : i + 7])
            return width, height
        if length < 2:
            raise BadHeader(f"JPEG: segment length {length} at byte {i}")
        i += length


def _webp(d: bytes) -> tuple[int, int]:
    chunk = d[12:16]
    if chunk == b"VP8 ":
        if d[23:26] != b"\x9d\x01\x2a":
            raise BadHeader("WebP VP8: no start code")
        w, h = struct.unpack("<HH", d[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if d[20] != 0x2F:
            raise BadHeader("WebP VP8L: no signature")
        (bits,) = struct.unpack("<I", d[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(d[24:27], "little") + 1
        h = int.from_bytes(d[27:30], "little") + 1
        if len(d) < 30:
            raise IndexError
        return w, h
    raise BadHeader(f"WebP with an unknown first chunk {chunk!r}")


def _tiff(d: bytes) -> tuple[int, int]:
    e = "<" if d[:2] == b"II" else ">"
    (version,) = struct.unpack(e + "H", d[2:4])
    big = version == 43
    if big:
        (ifd,) = struct.unpack(e + "Q", d[8:16])
        (count,) = struct.unpack(e + "Q", d[ifd : ifd + 8])
        start, size, value_at = ifd + 8, 20, 12
    else:
        (ifd,) = struct.unpack(e + "I", d[4:8])
        (count,) = struct.unpack(e + "H", d[ifd : ifd + 2])
        start, size, value_at = ifd + 2, 12, 8
    if count > 10_000:
        raise BadHeader(f"TIFF: {count} IFD entries")
    found: dict[int, int] = {}
    for k in range(count):
        at = start + k * size
        tag, typ = struct.unpack(e + "HH", d[at : at + 4])
        if tag not in (256, 257):
            continue
        value = d[at + value_at : at + size]
        if len(value) != size - value_at:
            raise IndexError
        fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
        if fmt is None:
            raise BadHeader(f"TIFF: size tag {tag} of type {typ}")
        (found[tag],) = struct.unpack(e + fmt, value[: struct.calcsize(fmt)])
    if 256 not in found or 257 not in found:
        raise BadHeader("TIFF: the first IFD gives no width and height")
    return found[256], found[257]


def _bmp(d: bytes) -> tuple[int, int]:
    (dib,) = struct.unpack("<I", d[14:18])
    if dib == 12:
        return struct.unpack("<HH", d[18:22])
    w, h = struct.unpack("<ii", d[18:26])
    return w, abs(h)


_READERS = (
    (ImageFormat.PNG, lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", _png),
    (ImageFormat.JPEG, lambda d: d[:3] == b"\xff\xd8\xff", _jpeg),
    (ImageFormat.WEBP, lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp),
    (ImageFormat.TIFF, lambda d: d[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"), _tiff),
    (ImageFormat.BMP, lambda d: d[:2] == b"BM" and len(d) >= 18, _bmp),
)
