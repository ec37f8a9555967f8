"""Shared bits of the server tests: sample files, the CLI's output for the same files, PNG crafting."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from trt_inpaint.runtime.cli import main as cli_main
from trt_inpaint.samples import sample_pairs


def sample(k: int = 0) -> tuple[Path, Path]:
    return sample_pairs()[k]


def as_png(src: Path, folder: Path) -> Path:
    out = folder / f"{src.stem}.png"
    cv2.imwrite(str(out), cv2.imread(str(src), cv2.IMREAD_UNCHANGED))
    return out


def cli_output(engines: Path, image: Path, mask: Path, out: Path, *flags: str) -> bytes:
    """What ``trt-inpaint IMG MASK -o OUT`` writes for these files (same engines and backend)."""
    args = [str(image), str(mask), "-o", str(out), "--engines", str(engines), "--backend", "ort-cpu"]
    assert cli_main([*args, "--no-footprint-cache", *flags]) == 0
    return out.read_bytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height``, then a tiny IDAT and IEND: decoding
    it would allocate the claimed size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def encode(pixels: np.ndarray, suffix: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(suffix, pixels, list(params))
    assert ok
    return buf.tobytes()
