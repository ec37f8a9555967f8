"""The headline comparison on a tiny LaMa exported by the real exporter: PyTorch eager vs ONNX Runtime CPU."""

from __future__ import annotations

import json

import pytest

from trt_inpaint.bench.cli import main
from trt_inpaint.export.spec import Precision, Stage


@pytest.fixture(scope="module")
def tiny_lama(tmp_path_factory):
    from trt_inpaint.export.build import ExportOptions, export
    from trt_inpaint.export.engine import Builder

    out = tmp_path_factory.mktemp("tiny-engines")
    opts = ExportOptions(
        out_dir=out, precision=Precision.FP32, builder=Builder.NONE, tiny=True, stages=(Stage.LAMA,)
    )
    export(opts)
    return out


def test_headline_ratio_from_the_same_run(tiny_lama, tmp_path):
    out = tmp_path / "r"
    rc = main(["--engines", str(tiny_lama), "--out", str(out), "--pipeline", "lama", "--size", "64",
               "--sizes", "64", "--batch", "1", "--runs", "2", "--warmup", "0", "--budgets", "all",
               "--backends", "torch-fp32,ort-cpu-fp32", "--no-plot", "--peak-n", "128"])  # fmt: skip
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["random_init"] is True
    h = rep["headline"]
    torch_row = next(b for b in rep["backends"] if b["key"] == "torch-fp32")
    ort_row = next(b for b in rep["backends"] if b["key"] == "ort-cpu-fp32")
    t = torch_row["result"]["pipeline_runs"][0]["end_to_end"]["stats"]["p50"]
    o = ort_row["result"]["pipeline_runs"][0]["end_to_end"]["stats"]["p50"]
    assert (h["torch_p50"], h["ort_p50"]) == (t, o)  # the same run's numbers (the ratio: test_rates.py)
    assert h["speedup"] > 0 and h["goal"] == 1.5
    md = (out / "report.md").read_text()
    assert "ONNX Runtime CPU fp32 vs PyTorch eager fp32, end to end at 64x64" in md
    assert "RANDOM-INIT" in md
    assert rep["flops"]["lama"]["64"]["complete"] and rep["flops"]["lama"]["64"]["total"] > 0


def test_quick_headline_says_it_is_first_runs_only(tiny_lama, tmp_path, capsys):
    out = tmp_path / "q"
    rc = main(["--engines", str(tiny_lama), "--out", str(out), "--pipeline", "lama", "--size", "64",
               "--quick", "--sizes", "64", "--budgets", "all", "--backends", "torch-fp32,ort-cpu-fp32",
               "--no-plot", "--peak-n", "128"])  # fmt: skip
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["headline"] and rep["config"]["runs"] == 0
    assert "quick run: first runs only; judge the goal on a full run" in (out / "report.md").read_text()
    assert "quick run: first runs only, judge the goal on a full run" in capsys.readouterr().out
