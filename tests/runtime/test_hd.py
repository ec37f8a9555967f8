"""Geometry of the crop / resize / original strategies."""

import numpy as np
import pytest

from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import Pipeline, pipeline_stages, spec
from trt_inpaint.runtime import hd
from trt_inpaint.runtime.options import InpaintOptions

ENSEMBLE = [spec(s) for s in pipeline_stages(Pipeline.ENSEMBLE)]
LAMA = [spec(s) for s in pipeline_stages(Pipeline.LAMA)]
MARGIN = InpaintOptions.default("hd_crop_margin")


def _hole(h, w, box):
    m = np.zeros((h, w), bool)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize(
    "h, w, box",
    [(1200, 1600, (100, 140, 1500, 1590)), (1200, 1600, (0, 1200, 0, 10)), (300, 451, (10, 20, 30, 40)),
     (40, 2000, (5, 30, 1000, 1900)), (700, 700, (650, 700, 0, 700))],
)  # fmt: skip
def test_crop_covers_the_mask_and_works_at_512(h, w, box):
    hole = _hole(h, w, box)
    geo = hd.plan(h, w, hole, hd.HdConfig(hd.HdStrategy.CROP, MARGIN), ENSEMBLE)
    assert geo.work == (512, 512)
    assert geo.y0 <= box[0] and geo.y1 >= box[1] and geo.x0 <= box[2] and geo.x1 >= box[3]
    assert 0 <= geo.y0 < geo.y1 <= h and 0 <= geo.x0 < geo.x1 <= w
    ph, pw = geo.padded
    assert ph == pw  # square before resizing
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    work = hd.to_work(img, geo, is_mask=False)
    assert work.shape == (512, 512, 3)
    back = hd.from_work(work, geo)
    assert back.shape == (geo.y1 - geo.y0, geo.x1 - geo.x0, 3)
    wm = hd.to_work(hole.astype(np.float32), geo, is_mask=True)
    assert set(np.unique(wm)) <= {0.0, 1.0} and wm.any()


def test_small_crop_is_padded_not_resampled():
    h, w = 300, 451
    hole = _hole(h, w, (100, 120, 200, 260))
    geo = hd.plan(h, w, hole, hd.HdConfig(hd.HdStrategy.CROP, MARGIN), ENSEMBLE)
    img = np.random.default_rng(1).random((h, w, 3), dtype=np.float32)
    assert np.array_equal(hd.from_work(hd.to_work(img, geo, is_mask=False), geo), img)


def test_thin_stroke_survives_downscaling():
    hole = _hole(2000, 2000, (0, 2000, 1000, 1001))
    geo = hd.plan(2000, 2000, hole, hd.HdConfig(hd.HdStrategy.RESIZE, MARGIN), ENSEMBLE)
    wm = hd.to_work(hole.astype(np.float32), geo, is_mask=True)
    assert wm.any(axis=1).all()


def test_original_pads_to_a_multiple_of_8_for_lama_and_to_512_for_mat():
    hole = _hole(300, 451, (1, 2, 3, 4))
    geo = hd.plan(300, 451, hole, hd.HdConfig(hd.HdStrategy.ORIGINAL, MARGIN), LAMA)
    assert geo.work == (304, 456)
    geo = hd.plan(300, 451, hole, hd.HdConfig(hd.HdStrategy.ORIGINAL, MARGIN), ENSEMBLE)
    assert geo.work == (512, 512)
    with pytest.raises(InputError, match="crop or resize"):
        config = hd.HdConfig(hd.HdStrategy.ORIGINAL, MARGIN)
        hd.plan(600, 451, _hole(600, 451, (1, 2, 3, 4)), config, ENSEMBLE)
