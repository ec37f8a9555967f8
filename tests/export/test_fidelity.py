"""Fidelity figures are taken over the hole: a graph that writes a constant into the hole must fail.

Every stage copies the known pixels through, so a PSNR over the whole image mostly scores that copy. The
graphs here are written directly as ONNX (no torch, ``standins.fill_model``): ``fill(a, b)`` outputs
``a + b * image`` in the hole and the image elsewhere, so ``fill(0.5, 0)`` is the constant-0.5 graph.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.standins import fill_model
from trt_inpaint.errors import InputError
from trt_inpaint.export import spec as S
from trt_inpaint.export.calibration import read_pair
from trt_inpaint.export.fp16_check import compare, hole_masks
from trt_inpaint.export.segmented import run_onnx
from trt_inpaint.samples import sample_pairs

STAGE = S.Stage.LAMA_DENOISER  # image, mask -> output


def fill(a: float, b: float) -> bytes:
    return fill_model(STAGE, a, b).SerializeToString()


@pytest.fixture(scope="module")
def photo_feeds() -> list[dict[str, np.ndarray]]:
    """The shipped photos and their masks at 512x512 (holes of 4.5-12 % of the image)."""
    s = S.spec(STAGE)
    feeds = []
    for img, mask in sample_pairs():
        image, hole = read_pair(img, mask, 512)
        feeds.append(dict(zip(s.input_names, (image, hole), strict=True)))
    return feeds


def _whole_image_psnr(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    """What the checks used to compute: PSNR over every pixel."""
    mse = np.mean([np.mean((g.astype(np.float64) - r) ** 2) for r, g in zip(ref, got, strict=True)])
    return 10 * math.log10(1 / mse)


def test_constant_in_the_hole_passed_the_whole_image_check_and_fails_the_hole_check(photo_feeds):
    """A reference with a weak signal in the hole (as the random-init light stages had: hole std 0.006 to
    0.02), here 0.5 +- 0.025 in a checkerboard: the constant-0.5 graph scored >= 40 dB over the whole image
    on every photo; over the hole it scores 20 log10(1 / 0.025) = 32 dB, and the reference's spread flags
    the comparison as unable to see much."""
    constant = run_onnx(fill(0.5, 0.0), photo_feeds)
    holes = hole_masks(photo_feeds)
    weak = []
    for f, hole in zip(photo_feeds, holes, strict=True):
        image = f[S.spec(STAGE).input_names[0]]
        checker = (np.indices(image.shape).sum(axis=0) % 2) * 2 - 1  # +-1
        weak.append(np.where(hole > 0, 0.5 + 0.025 * checker, image).astype(np.float32))
    for k in range(len(photo_feeds)):
        assert _whole_image_psnr([weak[k]], [constant[k]]) >= 40, k  # the old check passed it
        comp = compare([weak[k]], [constant[k]], [holes[k]])
        assert comp.psnr_db == pytest.approx(20 * math.log10(1 / 0.025), abs=1e-3), (k, comp)
        assert comp.max_abs_diff == pytest.approx(0.025, abs=1e-6)
        assert comp.reference_std < 0.05, comp  # the guard every fidelity test asserts fails here
    # a reference with real signal in the hole (the photo itself): the guard holds, and the constant fails
    photo = run_onnx(fill(0.0, 1.0), photo_feeds)
    comp = compare(photo, constant, holes)
    assert comp.reference_std > 0.05 and comp.psnr_db < 25, comp


def test_known_pixels_do_not_count_and_nonfinite_counts_everywhere(photo_feeds):
    feeds = photo_feeds[:2]
    ref = run_onnx(fill(0.0, 1.0), feeds)
    holes = hole_masks(feeds)
    same = compare(ref, [r.copy() for r in ref], holes)
    assert same.psnr_db == math.inf and same.max_abs_diff == 0 and same.nonfinite == 0
    assert same.hole_values == sum(3 * int(h.sum()) for h in holes)
    outside = [r.copy() for r in ref]
    outside[0][np.broadcast_to(holes[0] == 0, outside[0].shape)] += 0.5  # known pixels only: not scored
    assert compare(ref, outside, holes).psnr_db == math.inf
    bad = [r.copy() for r in ref]
    known = np.flatnonzero(np.broadcast_to(holes[1] == 0, bad[1].shape))
    bad[1].reshape(-1)[known[:3]] = [np.inf, -np.inf, np.nan]  # known pixels: counted all the same
    assert compare(ref, bad, holes).nonfinite == 3
    inside = [r.copy() for r in ref]
    inside[0] = np.where(np.broadcast_to(holes[0] > 0, inside[0].shape), inside[0] + 0.01, inside[0])
    c = compare(ref, inside, holes)
    # diff 0.01 over image 0's hole, 0 over image 1's: PSNR from the hole-weighted mean square
    n0, n1 = int(holes[0].sum()), int(holes[1].sum())
    assert c.psnr_db == pytest.approx(10 * math.log10((n0 + n1) / (n0 * 1e-4)), abs=1e-3)
    assert c.max_abs_diff == pytest.approx(0.01, abs=1e-6)


def test_empty_hole_and_missing_mask_are_errors():
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(InputError, match="no hole pixels"):
        compare([x], [x], [np.zeros((1, 1, 8, 8), np.float32)])
    with pytest.raises(ValueError, match="mask"):
        hole_masks([{"image": x}])
