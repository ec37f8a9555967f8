"""OpenVINO against PyTorch fp32 on the exporter's real output (reduced models, seeded random weights), per
stage and end to end on the shipped photos. Fidelity over the hole (every stage copies the known pixels).

fp32: max |diff| <= 1e-3 per stage. bf16, where this CPU computes it natively: PSNR >= 40 dB per stage and on
the composited output, no NaN or inf. Where it does not, the test shows that bf16 is refused and the default
run computes fp32 and says so. The full-size stages are checked the same way in
tests/export/test_export_full.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.cpu_facts import native_bf16_here
from tests.export.photo_feeds import photo_feeds
from tests.openvino_check import check_openvino_stage
from trt_inpaint.export import spec as S
from trt_inpaint.models import stages as ST
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.runtime.backends.openvino import cpu_bf16

SEED = 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from trt_inpaint.export.build import ExportOptions, export
    from trt_inpaint.export.engine import Builder

    out = tmp_path_factory.mktemp("exported")
    export(ExportOptions(out_dir=out, precision=S.Precision.FP32, builder=Builder.NONE, random_init=True,
                         tiny=True, seed=SEED))  # fmt: skip
    return out


@pytest.mark.parametrize("stage", list(S.Stage))
def test_each_stage_against_torch(exported, stage):
    side = S.spec(stage).fixed_size or 256
    feeds = photo_feeds(stage, side, side, first=0, noise_seed=0)
    module = ST.random_stage(stage, seed=SEED, tiny=True)
    with torch.no_grad():
        ref = module(*(torch.from_numpy(x) for x in feeds.values())).numpy()
    check_openvino_stage(stage, exported / S.onnx_filename(stage, S.Precision.FP32), feeds, ref)


def _psnr_over_holes(refs, outs, masks) -> tuple[float, int]:
    d = np.concatenate(
        [(o.astype(np.float64) - r)[m > 127].ravel() for r, o, m in zip(refs, outs, masks, strict=True)]
    )
    mse = float(np.mean((d / 255.0) ** 2))
    return (math.inf if mse == 0 else 10 * math.log10(1.0 / mse)), int(np.abs(d).max())


def test_ensemble_end_to_end_on_the_shipped_photos(exported, samples):
    """The composited output of the whole ensemble on every shipped photo, OpenVINO at its default precision
    (bf16 where native) and at fp32, against the torch backend."""
    pairs = [(img, mask) for img, mask, _ in samples]
    masks = [m for _, m in pairs]
    with Inpainter(engines=exported, backend="torch") as inp:
        refs = inp.inpaint_many(pairs)
    with Inpainter(engines=exported, backend="openvino", precision="fp32") as inp:
        fp32 = inp.inpaint_many(pairs)
    psnr, worst = _psnr_over_holes(refs, fp32, masks)
    assert worst <= 1, worst  # fp32: at most one level of rounding apart
    with Inpainter(engines=exported, backend="openvino") as inp:
        default = inp.inpaint_many(pairs)
        stats = inp.stats()
    for img, out in zip((p[0] for p in pairs), default, strict=True):
        assert out.shape == img.shape and out.dtype == img.dtype
    psnr, worst = _psnr_over_holes(refs, default, masks)
    if native_bf16_here():
        assert stats["precision"] == "bf16" and psnr >= 40, (psnr, worst)
        assert worst > 0  # bf16 really ran
    else:
        assert stats["precision"] == "fp32" and "bf16 is not used" in stats["selection"]
        assert cpu_bf16().native is False and worst <= 1
