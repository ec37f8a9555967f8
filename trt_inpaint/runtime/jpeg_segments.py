"""JPEG marker segments: a file's header read without decoding its image, and metadata carried over.

The header is what comes before the first scan: the frame (size, precision, components and their
sampling factors), the quantization tables, the restart interval and the metadata segments (APPn: JFIF,
EXIF, ICC, XMP, Adobe, ...; COM). ``with_metadata`` puts one file's metadata segments in front of another
file's coded image, so an image re-encoded elsewhere displays as the original did.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from trt_inpaint.errors import InputError

SOI, EOI, SOS, DQT, DRI, COM = 0xD8, 0xD9, 0xDA, 0xDB, 0xDD, 0xFE
APP0, APP2, APP14, APP15 = 0xE0, 0xE2, 0xEE, 0xEF
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0..7 carry no length
_HIERARCHICAL = {0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF, 0xDE, 0xDF}  # differential frames, DHP, EXP
_FRAMES = {m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)}  # SOF0..15 less DHT, JPG, DAC
_ARITHMETIC = {m for m in _FRAMES if m >= 0xC9}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_LOSSLESS = {0xC3, 0xC7, 0xCB, 0xCF}
_ICC = b"ICC_PROFILE\x00"


def _zigzag() -> np.ndarray:
    """Natural (row-major) position of each coefficient in zigzag order, as the JPEG standard defines it."""
    order = sorted(
        ((r, c) for r in range(8) for c in range(8)),
        key=lambda p: (p[0] + p[1], p[0] if (p[0] + p[1]) % 2 else p[1]),
    )
    return np.array([r * 8 + c for r, c in order], np.intp)


ZIGZAG = _zigzag()


@dataclass(frozen=True)
class Component:
    ident: int
    h: int  # horizontal sampling factor
    v: int  # vertical sampling factor
    table: int  # quantization table id


@dataclass(frozen=True)
class Header:
    frame: int  # the SOFn marker byte
    precision: int  # bits per sample
    height: int
    width: int
    components: tuple[Component, ...]
    tables: dict[int, np.ndarray]  # quantization tables by id, 8x8 in natural order (uint16)
    table_bits: dict[int, int]  # 8 or 16, by id
    restart_interval: int
    metadata: tuple[bytes, ...]  # whole APPn and COM segments (marker, length, payload), in file order
    hierarchical: bool

    @property
    def arithmetic(self) -> bool:
        return self.frame in _ARITHMETIC

    @property
    def progressive(self) -> bool:
        return self.frame in _PROGRESSIVE

    @property
    def lossless(self) -> bool:
        return self.frame in _LOSSLESS

    @property
    def sampling(self) -> tuple[tuple[int, int], ...]:
        """(h, v) of each component."""
        return tuple((c.h, c.v) for c in self.components)

    def blocks(self, index: int) -> tuple[int, int]:
        """Rows and columns of 8x8 blocks that hold component ``index`` (without MCU padding)."""
        c = self.components[index]
        hmax = max(k.h for k in self.components)
        vmax = max(k.v for k in self.components)
        rows = -(-self.height * c.v // vmax)
        cols = -(-self.width * c.h // hmax)
        return -(-rows // 8), -(-cols // 8)


def _segments(data: bytes) -> Iterable[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the first scan; the last one yielded is SOS or EOI."""
    if data[:2] != b"\xff\xd8":
        raise InputError("not a JPEG file (no start-of-image marker)")
    i = 2
    while True:
        while i < len(data) and data[i] == 0xFF and i + 1 < len(data) and data[i + 1] == 0xFF:
            i += 1  # fill bytes
        if i + 2 > len(data) or data[i] != 0xFF:
            raise InputError(f"JPEG header is damaged: no marker at byte {i}")
        marker = data[i + 1]
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == EOI:
            yield marker, i, i + 2
            return
        if i + 4 > len(data):
            raise InputError("JPEG header is truncated")
        (length,) = struct.unpack_from(">H", data, i + 2)
        end = i + 2 + length
        if length < 2 or end > len(data):
            raise InputError(f"JPEG segment 0x{marker:02X} at byte {i} runs past the end of the file")
        yield marker, i, end
        if marker == SOS:
            return
        i = end


def _read_tables(payload: bytes, tables: dict[int, np.ndarray], bits: dict[int, int]) -> None:
    i = 0
    while i < len(payload):
        pq, tq = payload[i] >> 4, payload[i] & 15
        size = 2 if pq else 1
        raw = payload[i + 1 : i + 1 + 64 * size]
        if len(raw) < 64 * size or tq > 3:
            raise InputError("JPEG quantization table segment is damaged")
        zz = np.frombuffer(raw, ">u2" if pq else np.uint8).astype(np.uint16)
        table = np.zeros(64, np.uint16)
        table[ZIGZAG] = zz
        tables[tq] = table.reshape(8, 8)
        bits[tq] = 16 if pq else 8
        i += 1 + 64 * size


def parse_header(data: bytes) -> Header:
    """The header of a JPEG file (everything before its first scan). InputError if it is not one."""
    frame = None
    tables: dict[int, np.ndarray] = {}
    bits: dict[int, int] = {}
    metadata: list[bytes] = []
    restart = 0
    hierarchical = False
    for marker, start, end in _segments(data):
        payload = data[start + 4 : end]
        if marker in _FRAMES and frame is None:
            if len(payload) < 6:
                raise InputError("JPEG frame header is damaged")
            precision, height, width, count = struct.unpack_from(">BHHB", payload)
            if len(payload) < 6 + 3 * count or count == 0:
                raise InputError("JPEG frame header is damaged")
            comps = tuple(
                Component(
                    payload[6 + 3 * k], payload[7 + 3 * k] >> 4, payload[7 + 3 * k] & 15, payload[8 + 3 * k]
                )
                for k in range(count)
            )
            if any(c.h == 0 or c.v == 0 for c in comps):
                raise InputError("JPEG frame header has a zero sampling factor")
            frame = (marker, precision, height, width, comps)
        elif marker == DQT:
            _read_tables(payload, tables, bits)
        elif marker == DRI and len(payload) >= 2:
            (restart,) = struct.unpack_from(">H", payload)
        elif APP0 <= marker <= APP15 or marker == COM:
            metadata.append(bytes(data[start:end]))
        if marker in _HIERARCHICAL:
            hierarchical = True
    if frame is None:
        raise InputError("JPEG file has no frame header before its first scan")
    marker, precision, height, width, comps = frame
    if height == 0 or width == 0:
        raise InputError(
            f"JPEG frame is {width}x{height} (a height set later by a DNL marker is not supported)"
        )
    return Header(
        marker, precision, height, width, comps, tables, bits, restart, tuple(metadata), hierarchical
    )


def is_adobe(segment: bytes) -> bool:
    """An Adobe APP14 segment (it tells a decoder the colour transform of the coded components)."""
    return segment[1] == APP14 and segment[4:9] == b"Adobe"


def icc_colour_space(segment: bytes) -> bytes | None:
    """The data colour space of the ICC profile whose first chunk this APP2 segment is (b'RGB ', b'GRAY',
    b'CMYK', ...); None for any other segment or a later chunk."""
    if segment[1] != APP2 or segment[4:16] != _ICC:
        return None
    if segment[16] != 1:  # chunk number: the profile header sits in the first
        return None
    return bytes(segment[18 + 16 : 18 + 20])


def is_mpf(segment: bytes) -> bool:
    """A Multi-Picture Format APP2 segment: offsets of further images stored after the coded image."""
    return segment[1] == APP2 and segment[4:8] == b"MPF\x00"


def is_icc(segment: bytes) -> bool:
    return segment[1] == APP2 and segment[4:16] == _ICC


def with_metadata(coded: bytes, metadata: Iterable[bytes]) -> bytes:
    """``coded`` (a JPEG file) with its own APPn/COM segments replaced by ``metadata``, put after SOI."""
    out = [b"\xff\xd8", *metadata]
    for marker, start, end in _segments(coded):
        if marker == SOS or marker == EOI:
            out.append(coded[start:])
            break
        if not (APP0 <= marker <= APP15 or marker == COM):
            out.append(coded[start:end])
    return b"".join(out)
