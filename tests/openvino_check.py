"""One stage's OpenVINO outputs against its PyTorch fp32 reference, over the hole (used on the reduced and on
the full-size exports): fp32 max |diff| <= 1e-3; bf16, where this CPU computes it natively, PSNR >= 40 dB
and finite, and really bf16 (the compiled model says so, and it differs from fp32); elsewhere bf16 is
refused with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cpu_facts import native_bf16_here
from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.export.fp16_check import compare, hole_masks
from trt_inpaint.export.spec import Precision, Stage
from trt_inpaint.runtime.backends.openvino import CACHE_FOLDER, OpenVinoRunner


def check_openvino_stage(stage: Stage, path: Path, feeds: dict[str, np.ndarray], ref: np.ndarray) -> None:
    holes = hole_masks([feeds])
    cache = path.parent / CACHE_FOLDER  # the bf16 load reads what the fp32 load compiled
    with OpenVinoRunner(stage, path, precision=Precision.FP32, cache_root=cache) as r:
        got = r.run(feeds)["output"]
        assert r.compiled_precision == "f32"
    c = compare([ref], [got], holes)
    assert c.max_abs_diff <= 1e-3 and c.nonfinite == 0, (stage, c)
    assert c.reference_std > 0.05, (stage, c)  # a spread hole: a wrong hole cannot pass
    if not native_bf16_here():
        with pytest.raises(BackendUnavailable, match="bf16 is not native on this CPU"):
            OpenVinoRunner(stage, path, precision=Precision.BF16).load()
        return
    with OpenVinoRunner(stage, path, precision=Precision.BF16, cache_root=cache) as r:
        got16 = r.run(feeds)["output"]
        assert r.compiled_precision == "bf16"
    c16 = compare([ref], [got16], holes)
    assert c16.psnr_db >= 40 and c16.nonfinite == 0, (stage, c16)
    assert c16.max_abs_diff > c.max_abs_diff  # bf16 really ran
