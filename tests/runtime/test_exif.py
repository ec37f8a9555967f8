"""EXIF orientation read from the bytes and applied, checked against OpenCV's own IMREAD_COLOR rotation."""

import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from trt_inpaint.runtime import imaging
from trt_inpaint.runtime.exif import apply_orientation, orientation


@pytest.mark.parametrize("suffix", [".png", ".webp", ".jpg"])
def test_every_orientation_matches_opencv(tmp_path, suffix):
    rng = np.random.default_rng(0)
    pixels = (rng.random((6, 10, 3)) * 255).astype(np.uint8)
    for value in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = value
        path = tmp_path / f"o{value}{suffix}"
        Image.fromarray(pixels).save(
            path, exif=exif.tobytes(), **({"lossless": True} if suffix == ".webp" else {})
        )
        data = path.read_bytes()
        assert orientation(data) == value
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        expected = cv2.imread(str(path), cv2.IMREAD_COLOR)  # OpenCV applies EXIF here
        assert np.array_equal(apply_orientation(raw, value), expected)
        # and the runtime's reader gives the upright image (RGB order)
        assert np.array_equal(imaging.read_image(path).pixels, expected[..., ::-1])


def test_no_exif_is_orientation_one(tmp_path):
    path = tmp_path / "plain.png"
    cv2.imwrite(str(path), np.zeros((4, 5, 3), np.uint8))
    assert orientation(path.read_bytes()) == 1
    assert orientation(b"not an image at all") == 1


# ---- other bit depths and channel counts: files built here byte by byte ------------------------------

H, W = 6, 10  # H * W < 256: a pixel's position fits in one 8-bit value


def _exif_tiff_payload(value: int) -> bytes:
    """The EXIF block (TIFF structure) with an orientation tag, as Pillow writes it."""
    exif = Image.Exif()
    exif[0x0112] = value
    data = exif.tobytes()
    return data[6:] if data.startswith(b"Exif\x00\x00") else data


def _png_with_exif(pixels: np.ndarray, value: int) -> bytes:
    """OpenCV's PNG (any depth, grey / BGR / BGRA) with an eXIf chunk inserted after IHDR."""
    import zlib

    ok, png = cv2.imencode(".png", pixels)
    assert ok
    png = png.tobytes()
    body = _exif_tiff_payload(value)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _tiff(pixels: np.ndarray, value: int) -> bytes:
    """An uncompressed little-endian TIFF (one strip, chunky) of grey, RGB or RGBA pixels (RGB order), 8 or
    16 bit, with an Orientation entry."""
    h, w = pixels.shape[:2]
    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    bits = pixels.dtype.itemsize * 8
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    n_entries = 11 + (c == 4)
    extra = 8 + 2 + 12 * n_entries + 4  # after the IFD: BitsPerSample's values (c > 1), then the strip
    bps = struct.pack(f"<{c}H", *[bits] * c) if c > 1 else b""
    strip = extra + len(bps)

    def entry(tag: int, typ: int, count: int, val: int) -> bytes:
        v = struct.pack("<HH", val, 0) if typ == 3 and count == 1 else struct.pack("<I", val)
        return struct.pack("<HHI", tag, typ, count) + v

    entries = [
        entry(256, 4, 1, w), entry(257, 4, 1, h), entry(258, 3, c, bits if c == 1 else extra),
        entry(259, 3, 1, 1), entry(262, 3, 1, 2 if c >= 3 else 1), entry(273, 4, 1, strip),
        entry(274, 3, 1, value), entry(277, 3, 1, c), entry(278, 4, 1, h), entry(279, 4, 1, len(data)),
        entry(284, 3, 1, 1),
    ]  # fmt: skip
    if c == 4:
        entries.append(entry(338, 3, 1, 2))  # ExtraSamples: unassociated alpha
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + b"\x00" * 4
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bps + data


def _upright_positions(value: int, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """Where each displayed pixel comes from, for orientation ``value``: OpenCV's own EXIF handling
    (IMREAD_COLOR, 8-bit RGB) of a position-coded PNG."""
    index = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    exif = Image.Exif()
    exif[0x0112] = value
    path = tmp_path / f"index{value}.png"
    Image.fromarray(np.stack([index] * 3, axis=-1)).save(path, exif=exif.tobytes())
    shown = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., 0].astype(int)
    return np.divmod(shown, W)


def _source(channels: int, dtype) -> np.ndarray:
    """Distinct values per pixel and channel, spanning the dtype's range (RGB(A) order)."""
    top = np.iinfo(dtype).max
    shape = (H, W) if channels == 1 else (H, W, channels)
    k = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return ((k * 7919) % (top + 1)).astype(dtype)


KINDS = [
    ("png", 3, np.uint16),
    ("png", 1, np.uint8),
    ("png", 1, np.uint16),
    ("png", 4, np.uint8),
    ("png", 4, np.uint16),
    ("tiff", 3, np.uint8),
    ("tiff", 3, np.uint16),
    ("tiff", 1, np.uint16),
    ("tiff", 4, np.uint16),
]


@pytest.mark.parametrize(("fmt", "channels", "dtype"), KINDS, ids=lambda k: getattr(k, "__name__", str(k)))
def test_every_orientation_for_other_depths_and_channels(tmp_path, fmt, channels, dtype):
    """16-bit, grey and RGBA PNG and TIFF files with each EXIF orientation: the runtime's reader gives the
    pixels, bit depth and alpha intact, placed as OpenCV places an 8-bit RGB image of that orientation.
    (TIFF: OpenCV's decoder applies the tag itself even with IMREAD_UNCHANGED; applied twice, 2..8 came
    out turned wrong.)"""
    src = _source(channels, dtype)
    for value in range(1, 9):
        if fmt == "png":
            bgr = src if channels == 1 else src[..., [2, 1, 0, 3][:channels]]
            data = _png_with_exif(bgr, value)
        else:
            data = _tiff(src, value)
        path = tmp_path / f"o{value}.{fmt}"
        path.write_bytes(data)
        assert orientation(data) == value
        ys, xs = _upright_positions(value, tmp_path)
        got = imaging.read_image(path).pixels
        assert got.dtype == dtype and got.shape == src[ys, xs].shape, (value, got.shape)
        assert np.array_equal(got, src[ys, xs]), value


def test_every_orientation_for_a_grey_jpeg(tmp_path):
    """A greyscale JPEG with an APP1 EXIF segment: the same pixels as OpenCV's own upright grey read."""
    src = _source(1, np.uint8)
    for value in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = value
        path = tmp_path / f"g{value}.jpg"
        Image.fromarray(src, "L").save(path, exif=exif.tobytes(), quality=95)
        assert path.read_bytes()[2:4] == b"\xff\xe1" or b"Exif\x00\x00" in path.read_bytes()[:64]
        expected = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)  # OpenCV applies EXIF here
        got = imaging.read_image(path).pixels
        assert got.ndim == 2 and np.array_equal(got, expected), value
        assert got.shape == ((W, H) if value >= 5 else (H, W))
