"""The runtime on the exporter's real output (tiny stages, seeded random weights, fp32 ONNX, no engine)."""

import numpy as np
import pytest

from trt_inpaint.export.spec import Precision, Stage
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.runtime.engines import EngineDir


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from trt_inpaint.export.build import ExportOptions, export
    from trt_inpaint.export.engine import Builder

    out = tmp_path_factory.mktemp("exported")
    opts = ExportOptions(
        out_dir=out, precision=Precision.FP32, builder=Builder.NONE, random_init=True, tiny=True,
        seed=3,
    )  # fmt: skip
    export(opts)
    return out


def test_manifest_facts_the_runtime_relies_on(exported):
    facts = EngineDir(exported).stage_facts(Stage.LAMA)
    assert facts.random_init_seed == 3 and facts.tiny
    assert (
        EngineDir(exported).recorded_bytes(Stage.LAMA, "lama.fp32.onnx")
        == (exported / "lama.fp32.onnx").stat().st_size
    )


@pytest.mark.parametrize("models", ["ensemble"])
def test_torch_backend_matches_onnx_runtime(exported, samples, models):
    img, mask, _ = samples[0]
    outs = {}
    for backend in ("ort-cpu", "torch"):
        with Inpainter(engines=exported, backend=backend, models=models) as inp:
            outs[backend] = inp.inpaint(img, mask)
            assert inp.stats()["backend"] == backend
    hole = mask > 127
    assert not np.array_equal(outs["torch"][hole], img[hole])
    diff = np.abs(outs["torch"].astype(int) - outs["ort-cpu"].astype(int))
    assert diff.max() <= 1, f"torch and ONNX Runtime differ by up to {diff.max()} levels"
    assert (diff > 0).mean() < 1e-3
