"""inpaint-bench end to end on small stand-in stages: the report's content and format, not its timings."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest

from trt_inpaint.bench.cli import main
from trt_inpaint.errors import EngineError
from trt_inpaint.export.spec import STAGES, Stage

ALL_ROWS = "ort-cpu-fp32,ort-cpu-fp16,ort-cuda-fp16,tensorrt-fp16,torch-fp32"


@pytest.fixture(scope="module")
def report(standin_engines, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rc = main(
        [
            "--engines",
            str(standin_engines),
            "--out",
            str(out),
            "--sizes",
            "64,128",
            "--batch",
            "1,2",
            "--runs",
            "2",
            "--warmup",
            "0",
            "--budget-images",
            "2",
            "--backends",
            ALL_ROWS,
            "--peak-n",
            "256",
        ]
    )
    assert rc == 0
    return out, json.loads((out / "report.json").read_text())


def _row(rep, key):
    return next(b for b in rep["backends"] if b["key"] == key)


def test_pipeline_rows_per_stage_and_end_to_end(report):
    _, rep = report
    ort = _row(rep, "ort-cpu-fp32")
    assert ort["available"] and "error" not in ort["result"]
    runs = ort["result"]["pipeline_runs"]
    assert [r["batch"] for r in runs] == [1, 2]
    for r in runs:
        assert [s["stage"] for s in r["stages"]] == [s.value for s in STAGES]
        n = 2 if r["batch"] == 1 else 1  # above batch 1 the first run is the only sample
        assert r["first_is_sample"] == (r["batch"] > 1)
        for s in r["stages"]:
            assert s["stats"]["n"] == n and s["stats"]["p50"] <= s["stats"]["p90"]
            assert s["load_s"] > 0 and s["first_run_s"] > 0 and s["stage_memory"] > 0
        e = r["end_to_end"]  # images/s against known times: test_rates.py
        assert e["images_per_s"] > 0 and e["peak_rss"] > 0
        assert e["stats"]["p50"] >= max(s["stats"]["min"] for s in r["stages"])
    assert ort["result"]["peak_rss"] >= runs[0]["end_to_end"]["peak_rss"]
    assert ort["result"]["memory"]["timeline"]


def test_unavailable_rows_say_why(report):
    _, rep = report
    reasons = {k: _row(rep, k)["reason"] for k in ALL_ROWS.split(",") if k != "ort-cpu-fp32"}
    assert "fp16.onnx" in reasons["ort-cpu-fp16"]
    assert "CUDAExecutionProvider" in reasons["ort-cuda-fp16"] or "GPU" in reasons["ort-cuda-fp16"]
    assert reasons["tensorrt-fp16"]
    assert "manifest" in reasons["torch-fp32"]  # the stand-ins give the torch backend no weights
    assert all(not _row(rep, k)["available"] for k in reasons)
    assert "mat.fp16.onnx" in reasons["ort-cpu-fp16"] and "lama.fp16.onnx" not in reasons["ort-cpu-fp16"]


def test_a_row_without_the_pipeline_still_measures_the_scaling_stage(report):
    out, rep = report
    fp16 = _row(rep, "ort-cpu-fp16")
    assert fp16["partial"] == "lama scaling only"
    assert fp16["result"]["pipeline_runs"] == [] and fp16["result"]["budgets"] == []
    assert [s["size"] for s in fp16["result"]["scaling"]] == [64, 128]
    assert "(measured: lama scaling only, see below)" in (out / "report.md").read_text()


def test_scaling_and_flops(report):
    _, rep = report
    from tests.standins import BENCH_WIDTHS, standin_flops

    sc = _row(rep, "ort-cpu-fp32")["result"]["scaling"]
    assert [(s["stage"], s["size"]) for s in sc] == [("lama", 64), ("lama", 128)]
    assert all(s["s_per_megapixel"] > 0 for s in sc)  # against known times: test_rates.py
    for stage in STAGES:
        e = rep["flops"][stage.value]["512"]
        assert e["complete"] and e["total"] == standin_flops(stage, 512, BENCH_WIDTHS[stage])
    assert rep["flops"]["lama"]["128"]["total"] == standin_flops(Stage.LAMA, 128, BENCH_WIDTHS[Stage.LAMA])
    assert rep["peak"]["flops"] > 0


def test_budgets_swap_below_the_total(report):
    _, rep = report
    rows = {(r["budget_name"], r["mode"]): r for r in _row(rep, "ort-cpu-fp32")["result"]["budgets"]}
    assert set(rows) == {("all", "folder"), ("tight", "folder"), ("tight", "one-by-one")}
    assert rows["all", "folder"]["swaps"] == 0 and rows["all", "folder"]["loads"] == len(STAGES)
    tight = rows["tight", "folder"]
    assert tight["budget"] < sum(rows["all", "folder"]["footprints"].values())
    assert tight["swaps"] > 0 and tight["loads"] >= len(STAGES) and tight["within_budget"], rows
    one = rows["tight", "one-by-one"]
    assert one["reloads"] > 0 and one["swap_in_s"] > 0 and one["within_budget"], rows
    assert all(r["outputs_ok"] for r in rows.values())


def test_markdown_and_png(report, capsys):
    out, rep = report
    md = (out / "report.md").read_text()
    header = "| backend | precision | stage | status | p50 ms | p90 ms | images/s | peak MiB | GFLOP/s |"
    assert header + " % of peak |" in md
    assert md.count("| ONNX Runtime CPU | fp32 |") >= len(STAGES) + 1
    assert "**end to end** (ensemble)" in md and "not available here" in md
    for section in (
        "One-time costs",
        "Scaling with image size",
        "Throughput against batch size",
        "Memory budgets and engine swaps",
        "FLOPs per stage",
        "## Machine",
    ):
        assert section in md
    assert "Load average at start" in md and rep["machine"]["cpu"] in md
    png = cv2.imread(str(out / "report.png"))
    assert png is not None and png.shape[1] > 1000


def test_missing_engines_is_one_line_error(tmp_path, capsys):
    rc = main(["--engines", str(tmp_path / "none"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EngineError.exit_code
    assert len(err) == 1 and "export-engines --out" in err[0]
    assert not (tmp_path / "r").exists()


def test_unknown_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--backends", "ort-cpu-fp32,warp-drive"])
    assert e.value.code == 2 and "warp-drive" in capsys.readouterr().err


def test_a_failing_backend_is_reported_and_the_rest_finish(standin_engines, tmp_path):
    eng = tmp_path / "engines"
    shutil.copytree(standin_engines, eng)
    (eng / "combiner.fp32.onnx").write_bytes(b"not an onnx model")
    out = tmp_path / "r"
    rc = main(
        [
            "--engines",
            str(eng),
            "--out",
            str(out),
            "--sizes",
            "64",
            "--batch",
            "1",
            "--runs",
            "1",
            "--budgets",
            "all",
            "--backends",
            "ort-cpu-fp32,tensorrt-fp16",
            "--no-plot",
            "--peak-n",
            "128",
        ]
    )
    assert rc == 1
    rep = json.loads((out / "report.json").read_text())
    assert "combiner" in _row(rep, "ort-cpu-fp32")["result"]["error"]
    assert not rep["flops"]["combiner"]["512"]["complete"] and rep["flops"]["lama"]["512"]["complete"]
    assert "failed: " in (out / "report.md").read_text()


def test_render_adds_an_analysis_without_measuring(report, tmp_path):
    out, rep = report
    note = tmp_path / "analysis.md"
    note.write_text("The stand-ins are memory-bound.")
    assert main(["--render", str(out), "--analysis", str(note), "--no-plot"]) == 0
    md = (out / "report.md").read_text()
    assert "## Analysis" in md and "The stand-ins are memory-bound." in md
    assert json.loads((out / "report.json").read_text())["backends"] == rep["backends"]
    assert main(["--render", str(tmp_path / "nothing")]) == 2


def test_quick_takes_first_runs_and_scales_one_row(standin_engines, tmp_path):
    out = tmp_path / "q"
    rc = main(["--engines", str(standin_engines), "--out", str(out), "--quick",
               "--backends", "ort-cpu-fp32,ort-cpu-fp16", "--no-plot", "--peak-n", "128"])  # fmt: skip
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["config"]["quick"] and rep["config"]["runs"] == 0
    fp32 = _row(rep, "ort-cpu-fp32")["result"]
    (run,) = fp32["pipeline_runs"]  # batch 1 only
    assert run["first_is_sample"] and run["end_to_end"]["stats"]["n"] == 1
    assert [s["size"] for s in fp32["scaling"]] == [256, 512]
    assert "ort-cpu-fp32" in rep["config"]["scaling_backends"]
    assert "ort-cpu-fp16" not in rep["config"]["scaling_backends"]  # quick: one scaling row per device
    assert all(b["images"] == 1 for b in fp32["budgets"])
    assert "the first run after loading is the only sample" in (out / "report.md").read_text()
