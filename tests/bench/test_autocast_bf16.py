"""The PyTorch bf16 row's path (``autocast_runner`` around the torch backend's runner) for every stage.

Reduced models at small sizes (MAT at its fixed 512). bf16 is native on AVX512-BF16 / AMX CPUs and
emulated by PyTorch elsewhere; no speed is asked, so this runs on any CPU. LaMa's Fourier units used to
fail here (torch.complex takes no bfloat16); they now keep their FFTs in fp32.
"""

from __future__ import annotations

import numpy as np
import pytest

from trt_inpaint.bench.autocast import autocast_runner
from trt_inpaint.export.spec import STAGES, spec
from trt_inpaint.runtime.backends.torch import TorchRunner

# Inside the hole, bf16 vs fp32 of the same weights; measured 48.4 to 57.3 dB over the five stages and
# seeds 0 and 1 (MAT and the combiner lowest), so 40 dB leaves room and still fails a broken stage.
HOLE_PSNR_DB = 40.0


def _runner(stage, seed: int) -> TorchRunner:
    from trt_inpaint.models.stages import random_stage

    return TorchRunner(stage, lambda: random_stage(stage, seed, tiny=True))


@pytest.mark.parametrize("stage", list(STAGES))
def test_bf16_row_runs_every_stage_close_to_fp32(stage):
    from trt_inpaint.models.stages import example_inputs

    s = spec(stage)
    side = s.fixed_size or 64
    inputs = example_inputs(stage, 1, side, side, seed=1)
    feeds = {t.name: a.numpy() for t, a in zip(s.inputs, inputs, strict=True)}
    out = s.output_names[0]
    with _runner(stage, 1) as fp32:
        ref = fp32.run(feeds)[out]
    with autocast_runner(_runner(stage, 1), "bf16") as bf16:
        y = bf16.run(feeds)[out]

    assert y.dtype == np.float32 and y.shape == ref.shape == (1, 3, side, side)
    assert np.isfinite(y).all()
    hole = np.broadcast_to(feeds["mask"].astype(bool), ref.shape)
    assert 0.2 < hole.mean() < 0.5  # example_inputs: about a third of the pixels are holes
    assert ref[hole].std() > 0.05  # a spread prediction, so PSNR sees differences
    err = y[hole] - ref[hole]
    assert np.abs(err).max() > 0  # autocast took effect: bf16 is not bit-equal to fp32
    psnr = 10 * np.log10(1.0 / np.mean(err**2))
    assert psnr > HOLE_PSNR_DB, f"{stage}: {psnr:.1f} dB"
    assert np.array_equal(y[~hole], ref[~hole])  # known pixels pass through the fp32 composite unchanged
