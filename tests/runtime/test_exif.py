"""EXIF orientation read from the bytes and applied, checked against OpenCV's own IMREAD_COLOR rotation."""

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
