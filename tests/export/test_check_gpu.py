"""``export-engines --check`` decides per stage whether an engine can be compared, and says why not.

Engines are real (TensorRT-RTX builds them here without a GPU); what differs from a GPU machine is only
that loading them fails for want of a driver, which the check must report as a reason, not a traceback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trt_inpaint.export import spec as S
from trt_inpaint.export.calibration import CalibrationOptions
from trt_inpaint.export.check import collect, format_table, run_check
from trt_inpaint.export.cli import main
from trt_inpaint.runtime import gpu

STAGE = S.Stage.FINAL_DENOISER
CAL = CalibrationOptions(size=64, max_images=2)
ARGS = ["--random-init", "--stages", STAGE.value, "--calibration-size", "64", "--calibration-images", "2"]
ARGS += ["--max-size", "128", "--min-size", "64", "--max-batch", "1"]


class ReusingRunner:
    """Like polygraphy's TrtRunner: every call writes into the same host output array and returns it."""

    def __init__(self):
        self.out = np.zeros((1, 3, 4, 4), np.float32)

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.out[...] = feed["x"] * 2
        return {"y": self.out}


def test_collect_copies_outputs_of_a_runner_that_reuses_its_buffer():
    feeds = [{"x": np.full((1, 3, 4, 4), k, np.float32)} for k in range(3)]
    runner = ReusingRunner()
    naive = [np.asarray(runner.infer(f)["y"]) for f in feeds]  # what the check did before
    assert all(np.array_equal(a, naive[-1]) for a in naive)  # every row shows the last image's output
    got = collect(ReusingRunner().infer, feeds, "y")
    for k, arr in enumerate(got):
        np.testing.assert_array_equal(arr, np.full((1, 3, 4, 4), 2 * k, np.float32))


@pytest.fixture(scope="module")
def rtx_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("rtx")
    assert main([*ARGS, "--out", str(out), "--builder", "tensorrt-rtx"]) == 0
    assert (out / S.engine_filename(STAGE, S.Precision.FP16)).is_file()
    return out


def _rows(folder, **kw):
    rows, note = run_check(folder, CAL, use_gpu=True, **kw)
    by = [(r.compared, r.comparison) for r in rows if r.stage == STAGE.value]
    return by, format_table(rows, note)


def _falls_back(by, reason: str) -> None:
    """First row: the engine was not compared, with ``reason``; then the CPU rows, each with numbers."""
    (why, none), *cpu = by
    assert why.startswith("engine not compared: ") and reason in why and none is None
    assert [c for c, _ in cpu] == ["fp16 ONNX (ORT CPU) vs fp32 ONNX", "fp16-sim vs fp32 ONNX"]
    assert all(comp is not None and comp.finite for _, comp in cpu)


def test_builder_none_falls_back_to_the_cpu_rows(tmp_path):
    assert main([*ARGS, "--out", str(tmp_path), "--builder", "none"]) == 0
    by, table = _rows(tmp_path)
    _falls_back(by, "no engine (built with --builder none)")
    assert "no engine compared" in table


def test_rtx_engine_on_hopper_is_refused_before_loading(rtx_folder, monkeypatch):
    monkeypatch.setattr(gpu, "shared_compute_capability", lambda: (9, 0))
    by, _ = _rows(rtx_folder)
    _falls_back(by, "Hopper is not supported by TensorRT-RTX")


def test_engine_that_cannot_load_gives_the_runner_reason(rtx_folder):
    """Here the real TensorRT-RTX runtime fails to deserialize without a driver: a reason in the table.
    On a GPU machine where the engine runs, it is compared for real instead."""
    by, table = _rows(rtx_folder)
    if by[0][1] is not None:  # pragma: no cover - an RTX GPU
        assert by[0][0].startswith("engine (tensorrt-rtx) vs fp32 ONNX") and by[0][1].finite
        return
    cc = gpu.shared_compute_capability()
    _falls_back(by, "Hopper" if cc and cc[0] == 9 else "no usable GPU")
    assert "Traceback" not in table


def test_missing_module_is_a_reason(rtx_folder, tmp_path):
    """A manifest whose engine came from full TensorRT, which is not installed here."""
    import shutil

    folder = tmp_path / "trt"
    shutil.copytree(rtx_folder, folder)
    manifest = json.loads((folder / S.MANIFEST_NAME).read_text())
    info = manifest["stages"][STAGE.value]["artefacts"]["engine"]["info"]
    info["builder"], info["target"] = "tensorrt", {"note": "runs on the GPU it was built on"}
    (folder / S.MANIFEST_NAME).write_text(json.dumps(manifest))
    by, _ = _rows(folder)
    _falls_back(by, "module tensorrt is not installed here")


def test_cpu_only_and_auto_without_gpu(rtx_folder):
    rows, note = run_check(rtx_folder, CAL, use_gpu=False)
    assert [r.compared for r in rows] == ["fp16 ONNX (ORT CPU) vs fp32 ONNX", "fp16-sim vs fp32 ONNX"]
    if gpu.gpu_problem():
        rows, note = run_check(rtx_folder, CAL)
        assert note.startswith("no GPU here") and rows[0].compared.startswith("engine not compared: no GPU")
