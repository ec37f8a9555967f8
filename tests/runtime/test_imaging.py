"""Reading, validating, thresholding, converting and writing images with real files."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from trt_inpaint.errors import InputError
from trt_inpaint.runtime import imaging


def _pixels(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    hi = np.iinfo(dtype).max
    return (rng.random(shape) * hi).astype(dtype)


@pytest.mark.parametrize(
    "suffix, shape, dtype",
    [(".png", (9, 7), np.uint8), (".png", (9, 7, 3), np.uint16), (".png", (9, 7, 4), np.uint16),
     (".tif", (9, 7, 3), np.uint16), (".tiff", (9, 7, 4), np.uint8), (".webp", (9, 7, 3), np.uint8),
     (".webp", (9, 7, 4), np.uint8), (".png", (9, 7, 4), np.uint8)],
)  # fmt: skip
def test_lossless_roundtrip_keeps_depth_channels_and_order(tmp_path, suffix, shape, dtype):
    pixels = _pixels(shape, dtype)
    path = tmp_path / f"x{suffix}"
    imaging.write_image(path, pixels)
    back = imaging.read_image(path)
    assert back.pixels.dtype == dtype and back.pixels.shape == shape
    assert np.array_equal(back.pixels, pixels)
    # RGB order on our side: OpenCV's file holds BGR
    if len(shape) == 3:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(raw[..., 0], pixels[..., 2])


def test_jpeg_written_8bit_from_16bit(tmp_path):
    path = tmp_path / "x.jpg"
    imaging.write_image(path, _pixels((16, 16, 3), np.uint16))
    assert imaging.read_image(path).pixels.dtype == np.uint8


@pytest.mark.parametrize(
    "content, problem",
    [(None, "not found"), (b"", "empty file"), (b"hello, I am text", "not an image"),
     (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image")],
)  # fmt: skip
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as err:
        imaging.read_image(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="folder"):
        imaging.read_image(tmp_path)


def test_check_image_rejects_bad_arrays():
    for bad in (
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((4, 4), np.int32),
        [1],
    ):
        with pytest.raises(InputError):
            imaging.check_image(bad)


def test_threshold_is_127_on_every_layout():
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert imaging.threshold_mask(grey).tolist() == [[False, False, True, True]]
    assert imaging.threshold_mask(grey.astype(np.uint16) * 257).tolist() == [[False, False, True, True]]
    assert imaging.threshold_mask(grey / 255.0).tolist() == [[False, False, True, True]]
    red = np.zeros((1, 2, 3), np.uint8)
    red[0, 1, 0] = 200  # a coloured stroke still marks a hole
    assert imaging.threshold_mask(red).tolist() == [[False, True]]
    rgba = np.full((1, 2, 4), 255, np.uint8)
    rgba[0, 0, 3] = 0  # transparent white is not a hole
    assert imaging.threshold_mask(rgba).tolist() == [[False, True]]


def test_mask_size_mismatch_is_an_error_unless_resized():
    hole = np.zeros((10, 20), bool)
    hole[2:4, 5:9] = True
    with pytest.raises(InputError, match="--resize-mask"):
        imaging.fit_mask(hole, (20, 40), resize=False, path=Path("m.png"))
    big = imaging.fit_mask(hole, (20, 40), resize=True)
    assert big.shape == (20, 40) and big[4:8, 10:18].all() and big.sum() == 32


def test_composite_changes_hole_pixels_only_and_keeps_alpha():
    from trt_inpaint.runtime.hd import Geometry

    img = _pixels((8, 8, 4), np.uint16)
    hole = np.zeros((8, 8), bool)
    hole[2:5, 3:6] = True
    geo = Geometry(1, 7, 2, 8, (0, 0, 0, 0), (6, 6))
    out = imaging.composite(img, np.full((6, 6, 3), 0.5, np.float32), geo, hole)
    assert np.array_equal(out[~hole], img[~hole]) and np.array_equal(out[..., 3], img[..., 3])
    assert (out[hole][:, :3] == 32768).all()


def test_grey_conversion_roundtrip():
    grey = _pixels((5, 6), np.uint8)
    rgb = imaging.to_float_rgb(grey)
    assert rgb.shape == (5, 6, 3)
    assert np.array_equal(imaging.from_float_rgb(rgb, grey)[..., 0], grey)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.png"
    with pytest.raises(InputError):
        imaging.write_image(path, np.zeros((4, 4, 3), np.uint8), ".nosuchformat")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="does not exist"):
        imaging.write_image(tmp_path / "missing" / "out.png", np.zeros((4, 4, 3), np.uint8))


def test_written_image_gets_ordinary_permissions(tmp_path):
    """A new output gets 0o666 less the umask, like any file the user writes; a replaced one keeps its own
    (the atomic writes themselves are tested in tests/test_atomic.py)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        new = tmp_path / "new.png"
        imaging.write_image(new, np.zeros((4, 4, 3), np.uint8))
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        new.chmod(0o640)
        imaging.write_image(new, np.ones((4, 4, 3), np.uint8))
        assert stat.S_IMODE(new.stat().st_mode) == 0o640
        assert [p.name for p in tmp_path.iterdir()] == ["new.png"]
    finally:
        os.umask(old)


def test_failed_rename_is_an_input_error_and_leaves_nothing(tmp_path):
    """The output name is taken by a non-empty folder: one-line InputError, the folder untouched."""
    taken = tmp_path / "out.png"
    taken.mkdir()
    (taken / "keep.txt").write_text("kept")
    with pytest.raises(InputError, match="cannot write output"):
        imaging.write_image(taken, np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert (taken / "keep.txt").read_text() == "kept"
