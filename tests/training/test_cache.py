"""cache-outputs and evaluate through the real runtime (ONNX Runtime CPU, tiny random-init LaMa and MAT)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from trt_inpaint.errors import EngineError, InputError
from trt_inpaint.export import spec as S
from trt_inpaint.runtime.options import InpaintOptions
from trt_inpaint.training.cache import SOURCE_NAME, RunOptions, cache_outputs
from trt_inpaint.training.cli import cache_outputs_main, evaluate_main
from trt_inpaint.training.data import load_index, read_mask, read_rgb


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from trt_inpaint.export.build import Exporter, ExportOptions
    from trt_inpaint.export.calibration import CalibrationOptions
    from trt_inpaint.export.engine import Builder

    out = tmp_path_factory.mktemp("engines")
    opts = ExportOptions(
        out_dir=out,
        tiny=True,
        builder=Builder.NONE,
        precision=S.Precision.FP32,
        stages=tuple(S.Stage),
        calibration=CalibrationOptions(size=64, max_images=1),
    )
    Exporter(opts).run()
    return out


@pytest.fixture()
def data(prepared, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(prepared.root, root, ignore=shutil.ignore_patterns("outputs"))
    return load_index(root)


def test_cache_outputs_runs_resumes_and_keeps_known_pixels(data, engines):
    opts = RunOptions(InpaintOptions(engines=engines, backend="ort-cpu"), progress=False, chunk=4)
    [summary] = cache_outputs(data, data.mask_sets, opts, models=(S.Pipeline.LAMA,), log=lambda m: None)
    n = len(data.items) * len(data.mask_sets)
    assert (summary.done, summary.skipped, summary.failed, summary.backend) == (n, 0, 0, "ort-cpu")
    for it in data.items:
        gt = read_rgb(data.image_path(it))
        for s in data.mask_sets:
            out = read_rgb(data.output_path("lama", it, s))
            known = read_mask(data.mask_path(it, s)) == 0
            assert out.shape == gt.shape and np.array_equal(out[known], gt[known])
    # resume: only the missing output is redone, to the same bytes
    victim = data.output_path("lama", data.items[0], data.mask_sets[0])
    before = victim.read_bytes()
    victim.unlink()
    [again] = cache_outputs(data, data.mask_sets, opts, models=(S.Pipeline.LAMA,), log=lambda m: None)
    assert (again.done, again.skipped) == (1, n - 1) and victim.read_bytes() == before
    # outputs made from other weights are not mixed in silently
    src = data.root / "outputs" / "lama" / SOURCE_NAME
    record = json.loads(src.read_text())
    assert record["backend"] == "ort-cpu" and set(record["weights"]) == {"lama"}
    record["weights"]["lama"] = "0" * 16
    src.write_text(json.dumps(record))
    victim.unlink()
    with pytest.raises(InputError, match="other weights"):
        cache_outputs(data, data.mask_sets, opts, models=(S.Pipeline.LAMA,), log=lambda m: None)


def test_lama_over_the_whole_set_then_mat(data, engines):
    """Stage-major as the paper: every LaMa output is written and LaMa released before MAT starts."""
    logs: list[str] = []
    opts = RunOptions(InpaintOptions(engines=engines, backend="ort-cpu"), progress=False)
    lama, mat = cache_outputs(data, ["medium_256"], opts, log=logs.append)
    assert (lama.done, mat.done, lama.failed + mat.failed) == (len(data.items), len(data.items), 0)
    assert [m.split(":")[0] for m in logs] == ["lama", "lama", "mat", "mat"]
    assert "written" in logs[1] and "backend" in logs[2]
    for it in data.items:
        gt = read_rgb(data.image_path(it))
        known = read_mask(data.mask_path(it, "medium_256")) == 0
        a, b = (read_rgb(data.output_path(m, it, "medium_256")) for m in ("lama", "mat"))
        assert np.array_equal(a[known], gt[known]) and np.array_equal(b[known], gt[known])
        assert not np.array_equal(a, b)  # two different models filled the hole
    assert json.loads((data.root / "outputs" / "mat" / SOURCE_NAME).read_text())["seed"] == 240


def test_cli_no_engines_is_one_line_error(data, tmp_path, capsys):
    code = cache_outputs_main([str(data.root), "--engines", str(tmp_path / "none"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EngineError.exit_code == 4 and err[-1].startswith("cache-outputs: error:")


def test_evaluate_runs_missing_outputs_through_the_runtime(data, engines, tmp_path):
    """The ensemble row: all five stages through the runtime (tiny random-init engines), then scored."""
    args = ["--engines", str(engines), "--backend", "ort-cpu", "--models", "ensemble", "--masks", "medium"]
    code = evaluate_main([str(data.root), *args, "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    row = report["tables"]["medium_256"]["ensemble"]
    assert row["n"] == len(data.items) and 0 < row["ssim"] < 1 and 5 < row["psnr"] < 60
    assert report["runs"]["ensemble"]["done"] == len(data.items)
    assert not any(data.output_path("ensemble", it, "thick_256").exists() for it in data.items)
    for it in data.items:
        out = read_rgb(data.output_path("ensemble", it, "medium_256"))
        known = read_mask(data.mask_path(it, "medium_256")) == 0
        assert np.array_equal(out[known], read_rgb(data.image_path(it))[known])
