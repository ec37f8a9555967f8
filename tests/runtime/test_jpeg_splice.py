"""JPEG out without re-compressing the rest: real files from the shipped photos, decoded by OpenCV.

Every variant is a real JPEG written by Pillow (or jpeglib, for arithmetic coding) from a shipped photo;
the result pixels are OpenCV's own inpainting (Telea) of the shipped mask's hole. Outside the MCUs the
hole touches, and one MCU around them where chroma is subsampled (fancy upsampling reaches across), the
output must decode bit for bit as the input does.
"""

from __future__ import annotations

import io
import struct
import sys

import cv2
import jpeglib
import numpy as np
import pytest
from PIL import ExifTags, Image

from trt_inpaint.errors import InputError
from trt_inpaint.runtime import exif
from trt_inpaint.runtime.jpeg_quality import estimate_quality, scaled_luma_table
from trt_inpaint.runtime.jpeg_segments import parse_header
from trt_inpaint.runtime.jpeg_splice import splice_jpeg
from trt_inpaint.samples import SAMPLES_DIR

PHOTO = "chelsea"  # 451x300: neither side a multiple of 16, so edge blocks and MCU padding are exercised
HOLE_PSNR_DB = 38.0  # inside the hole, output vs the pixels handed in; measured 42.3 to 47.2 dB


def _photo(name: str = PHOTO) -> np.ndarray:
    bgr = cv2.imread(str(SAMPLES_DIR / "images" / f"{name}.jpg"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[..., ::-1])


def _hole(name: str = PHOTO) -> np.ndarray:
    """The shipped mask's hole plus a corner patch (the partial blocks at the right and bottom edges)."""
    hole = cv2.imread(str(SAMPLES_DIR / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
    hole[-5:, -7:] = True
    return hole


def _save(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _exif(value: int) -> bytes:
    e = Image.Exif()
    e[0x0112] = value
    return e.tobytes()


def _arithmetic(data: bytes, tmp_path) -> bytes:
    src, dst = tmp_path / "huffman.jpg", tmp_path / "arith.jpg"
    src.write_bytes(data)
    with jpeglib.version("turbo210"):
        jpeglib.read_dct(str(src)).write_dct(str(dst), flags=["+ARITH_CODE"])
    return dst.read_bytes()


# name -> (Pillow options, MCU rows x columns, chroma subsampled)
VARIANTS = {
    "420": (dict(quality=85, subsampling=2), (16, 16), True),
    "444": (dict(quality=92, subsampling=0), (8, 8), False),
    "422": (dict(quality=80, subsampling=1), (8, 16), True),
    "progressive": (dict(quality=88, subsampling=2, progressive=True), (16, 16), True),
    "restart": (dict(quality=75, subsampling=2, restart_marker_blocks=3), (16, 16), True),
    "grey": (dict(quality=83), (8, 8), False),
    "exif6": (dict(quality=90, subsampling=2, exif=_exif(6)), (16, 16), True),
    "exif7": (dict(quality=90, subsampling=0, exif=_exif(7)), (8, 8), False),  # transverse: mirrored
    "arithmetic": (dict(quality=86, subsampling=2), (16, 16), True),
    "rgb": (dict(quality=90, subsampling=0, keep_rgb=True), (8, 8), False),  # R, G, B coded, no YCbCr
}


def _original(name: str, tmp_path) -> bytes:
    opts, _, _ = VARIANTS[name]
    rgb = _photo()
    data = _save(rgb if name != "grey" else np.asarray(Image.fromarray(rgb).convert("L")), **opts)
    if name == "arithmetic":
        data = _arithmetic(data, tmp_path)
    header = parse_header(data)  # the fixture is what its name says
    assert header.progressive == (name == "progressive")
    assert (header.restart_interval > 0) == (name == "restart")
    assert header.arithmetic == (name == "arithmetic")
    assert len(header.components) == (1 if name == "grey" else 3)
    assert (bytes(c.ident for c in header.components) == b"RGB") == (name == "rgb")
    assert exif.orientation(data) == {"exif6": 6, "exif7": 7}.get(name, 1)
    return data


def _decode(data: bytes) -> np.ndarray:
    """Upright pixels as the runtime reads them: IMREAD_UNCHANGED, then the EXIF orientation applied."""
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return exif.apply_orientation(raw, exif.orientation(data))


def _zone(changed_stored: np.ndarray, mcu: tuple[int, int], around: int) -> np.ndarray:
    """Pixels of the MCUs holding a changed pixel, grown by ``around`` MCUs each way (stored layout)."""
    (h, w), (my, mx) = changed_stored.shape, mcu
    gh, gw = -(-h // my), -(-w // mx)
    grid = np.zeros((gh * my, gw * mx), bool)
    grid[:h, :w] = changed_stored
    grid = grid.reshape(gh, my, gw, mx).any(axis=(1, 3))
    padded = np.pad(grid, around)
    grown = np.zeros_like(grid)
    for dy in range(2 * around + 1):
        for dx in range(2 * around + 1):
            grown |= padded[dy : dy + gh, dx : dx + gw]
    return np.repeat(np.repeat(grown, my, axis=0), mx, axis=1)[:h, :w]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _inpaint(decoded: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """A real inpainting of the hole (OpenCV Telea): every pixel outside it is the decoded input's."""
    return cv2.inpaint(decoded, changed.astype(np.uint8), 5, cv2.INPAINT_TELEA)


def _case(name: str, tmp_path):
    original = _original(name, tmp_path)
    decoded = _decode(original)  # upright, channel order as OpenCV gives (the test keeps it consistent)
    value = exif.orientation(original)
    changed = exif.apply_orientation(_hole(), value)  # the hole as the user draws it on the upright image
    pixels = _inpaint(decoded, changed)
    rgb = pixels[..., ::-1] if pixels.ndim == 3 else pixels
    return original, decoded, value, changed, pixels, rgb


@pytest.mark.parametrize("name", list(VARIANTS))
def test_untouched_blocks_decode_bit_for_bit(name, tmp_path):
    original, decoded, value, changed, pixels, rgb = _case(name, tmp_path)
    _, mcu, subsampled = VARIANTS[name]

    result = splice_jpeg(original, rgb, changed)

    assert result.spliced and result.note is None
    out = _decode(result.data)
    assert out.shape == decoded.shape
    zone = exif.apply_orientation(
        _zone(exif.undo_orientation(changed, value), mcu, 1 if subsampled else 0), value
    )
    assert zone.mean() < 0.5  # the check below covers most of the picture
    assert np.array_equal(out[~zone], decoded[~zone])
    assert _psnr(out[changed], pixels[changed]) > HOLE_PSNR_DB
    # OpenCV's own EXIF handling (IMREAD_COLOR) agrees: same display, same pixels outside the zone
    shown_in = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR)
    shown_out = cv2.imdecode(np.frombuffer(result.data, np.uint8), cv2.IMREAD_COLOR)
    assert shown_out.shape == shown_in.shape and np.array_equal(shown_out[~zone], shown_in[~zone])
    # the file keeps its metadata byte for byte (EXIF orientation tag included) and its tables
    before, after = parse_header(original), parse_header(result.data)
    assert after.metadata == before.metadata
    assert exif.orientation(result.data) == value
    assert after.sampling == before.sampling
    for a, b in zip(after.components, before.components, strict=True):
        assert np.array_equal(after.tables[a.table], before.tables[b.table])


@pytest.mark.parametrize("name", ["420", "422", "444", "grey"])
def test_a_hole_unlike_the_photo_is_coded_as_well_as_a_whole_encode_would(name, tmp_path):
    """A hole painted flat magenta (white on grey): the touched blocks, chroma samples shared with known
    pixels included, follow the new pixels as well as encoding the whole result at the file's own
    quality and subsampling does (4:2:0 measured 26.7 dB vs 26.5 dB; 4:4:4 42.7 vs 42.3)."""
    original, _, _, changed, pixels, _ = _case(name, tmp_path)
    pixels[changed] = 255 if pixels.ndim == 2 else (255, 0, 255)
    rgb = np.ascontiguousarray(pixels[..., ::-1]) if pixels.ndim == 3 else pixels
    sampling = {
        "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
        "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
        "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    }
    params = [cv2.IMWRITE_JPEG_QUALITY, VARIANTS[name][0]["quality"]]
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling[name]] if name in sampling else []
    ok, whole = cv2.imencode(".jpg", pixels, params)
    assert ok

    spliced = _decode(splice_jpeg(original, rgb, changed).data)

    reference = _psnr(cv2.imdecode(whole, cv2.IMREAD_UNCHANGED)[changed], pixels[changed])
    assert _psnr(spliced[changed], pixels[changed]) > reference - 0.5


def test_the_old_whole_reencode_fails_the_same_check(tmp_path):
    """The bit-for-bit check above is sharp: re-encoding at quality 95 (the old way) fails it."""
    original, decoded, value, changed, pixels, _ = _case("420", tmp_path)
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    zone = _zone(changed, (16, 16), 1)
    assert not np.array_equal(out[~zone], decoded[~zone])


def test_nothing_changed_returns_the_input_file():
    original = (SAMPLES_DIR / "images" / "coffee.jpg").read_bytes()
    result = splice_jpeg(original, _decode(original)[..., ::-1], np.zeros(_decode(original).shape[:2], bool))
    assert result == type(result)(original, True, None)


def _exif_with_thumbnail(value: int, thumbnail: bytes) -> bytes:
    """EXIF (little-endian TIFF): IFD0 with the orientation, IFD1 pointing at a JPEG thumbnail."""
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, value, 0) + struct.pack("<I", 26)
    start = 26 + 2 + 2 * 12 + 4
    ifd1 = struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, start)
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1 + thumbnail


def test_exif_thumbnail_of_the_old_picture_is_blanked_and_mpf_dropped():
    """A stale thumbnail would show what was painted out; MPF would point at images the output lacks."""
    rgb = _photo()
    ok, thumb = cv2.imencode(".jpg", cv2.resize(rgb, (96, 64)))
    assert ok
    thumb = thumb.tobytes()
    buf = io.BytesIO()
    second = Image.fromarray(rgb[::2, ::2].copy())
    Image.fromarray(rgb).save(
        buf, "MPO", quality=88, exif=_exif_with_thumbnail(6, thumb), save_all=True, append_images=[second]
    )
    original = buf.getvalue()
    before = parse_header(original)
    assert thumb in original and any(s[4:8] == b"MPF\x00" for s in before.metadata)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.IFD1)[0x0202] == len(thumb)
    decoded = _decode(original)
    changed = exif.apply_orientation(_hole(), 6)

    result = splice_jpeg(original, _inpaint(decoded, changed)[..., ::-1], changed)

    assert result.spliced and thumb not in result.data
    after = parse_header(result.data)
    assert not any(s[4:8] == b"MPF\x00" for s in after.metadata)
    app1 = [s for s in after.metadata if s[4:10] == b"Exif\x00\x00"]
    assert len(app1) == 1 and len(app1[0]) == len(
        next(s for s in before.metadata if s[4:10] == b"Exif\x00\x00")
    )
    shown = Image.open(io.BytesIO(result.data))
    assert shown.getexif()[0x0112] == 6 and not shown.getexif().get_ifd(ExifTags.IFD.IFD1)
    assert exif.orientation(result.data) == 6


def test_cmyk_falls_back_to_a_reencode_at_the_estimated_quality():
    """jpeglib writes no fourth component: a CMYK file is re-encoded whole, at its own quality."""
    rgb = _photo()
    icc = b"\x00" * 16 + b"CMYK" + b"\x00" * 108  # a profile header naming CMYK data: no longer true after
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG", quality=77, exif=_exif(6), icc_profile=icc)
    original = buf.getvalue()
    assert len(parse_header(original).components) == 4 and estimate_quality(original) == 77
    decoded = _decode(original)  # OpenCV gives BGR for a CMYK JPEG
    changed = exif.apply_orientation(_hole(), 6)
    pixels = _inpaint(decoded, changed)

    result = splice_jpeg(original, pixels[..., ::-1], changed)

    assert not result.spliced
    assert result.note == "4-component (CMYK or YCCK) JPEG: re-encoded at estimated quality 77"
    assert estimate_quality(result.data) == 77
    header = parse_header(result.data)
    assert len(header.components) == 3 and header.sampling == ((1, 1),) * 3  # Pillow's CMYK is 4:4:4
    assert exif.orientation(result.data) == 6
    assert not any(s[1] == 0xEE or s[1] == 0xE2 for s in header.metadata)  # Adobe and the CMYK ICC gone
    out = _decode(result.data)
    assert out.shape == pixels.shape and _psnr(out, pixels) > 30.0


def test_without_jpeglib_it_falls_back_with_a_note(monkeypatch, tmp_path):
    original = _original("420", tmp_path)
    decoded = _decode(original)
    changed = _hole()
    monkeypatch.setitem(sys.modules, "jpeglib", None)  # import jpeglib now raises ImportError
    result = splice_jpeg(original, _inpaint(decoded, changed)[..., ::-1], changed)
    assert not result.spliced
    assert result.note.startswith("jpeglib is not installed") and result.note.endswith("estimated quality 85")
    assert estimate_quality(result.data) == 85
    assert parse_header(result.data).sampling == ((2, 2), (1, 1), (1, 1))


def test_a_scan_libjpeg_refuses_falls_back_and_the_process_lives_on():
    """A scan naming a component the frame lacks: libjpeg's error comes back as a fallback, not an exit."""
    good = (SAMPLES_DIR / "images" / "brick.jpg").read_bytes()  # grey, quality 90
    sos = good.find(b"\xff\xda")
    assert good[sos + 4] == 1  # one component in the scan; its selector follows
    damaged = good[: sos + 5] + bytes([9]) + good[sos + 6 :]
    pixels = _decode(good)
    changed = np.zeros(pixels.shape, bool)
    changed[100:140, 200:260] = True
    result = splice_jpeg(damaged, pixels, changed)
    assert not result.spliced
    assert result.note == "libjpeg could not read the coefficients: re-encoded at estimated quality 90"
    assert _psnr(_decode(result.data), pixels) > 40.0


@pytest.mark.parametrize("quality", [1, 5, 10, 24, 50, 51, 75, 87, 95, 99, 100])
def test_quality_estimate_of_files_written_at_known_qualities(quality):
    rgb = _photo()
    assert estimate_quality(_save(rgb, quality=quality)) == quality  # Pillow
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])  # OpenCV
    assert ok and estimate_quality(buf.tobytes()) == quality


def test_quality_estimate_of_a_table_near_an_ijg_one():
    table = scaled_luma_table(80).copy()
    table[4:, 4:] += 1  # a camera-style table: not IJG's, but closest to quality 80
    assert estimate_quality(_save(_photo(), qtables=[table.flatten().tolist()])) == 80


def test_undo_orientation_inverts_apply():
    a = np.arange(2 * 3 * 5).reshape(2, 3, 5)
    for value in range(1, 9):
        assert np.array_equal(exif.undo_orientation(exif.apply_orientation(a, value), value), a)


def test_bad_inputs_are_one_line_input_errors():
    original = (SAMPLES_DIR / "images" / "coffee.jpg").read_bytes()
    pixels = _decode(original)[..., ::-1]
    changed = np.zeros(pixels.shape[:2], bool)
    with pytest.raises(InputError, match="not a JPEG"):
        splice_jpeg(b"\x89PNG\r\n\x1a\n", pixels, changed)
    with pytest.raises(InputError, match="upright"):
        splice_jpeg(original, pixels[:, :-1], changed[:, :-1])
    with pytest.raises(InputError, match="changed-pixel map"):
        splice_jpeg(original, pixels, changed[:-1])
    with pytest.raises(InputError, match="uint8"):
        splice_jpeg(original, pixels.astype(np.float32), changed)
    with pytest.raises(InputError, match="runs past the end"):
        splice_jpeg(original[:30], pixels, changed)
