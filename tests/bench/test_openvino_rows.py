"""inpaint-bench's OpenVINO rows, the bf16 matmul peak beside the fp32 one, the CPU flags in the header, and
rows that fail without stopping the others. Stand-in stages: the report's content, not its timings."""

from __future__ import annotations

import json

import pytest

from tests.cpu_facts import flags_here, native_bf16_here
from tests.standins import write_standins
from trt_inpaint.bench import cli as bench_cli
from trt_inpaint.bench.backends import BY_KEY, DEFAULT_KEYS, Numeric, unavailable_reason
from trt_inpaint.bench.peak import measure_peak
from trt_inpaint.bench.report import pct_of_peak
from trt_inpaint.export.spec import STAGES, Pipeline, Precision, pipeline_stages
from trt_inpaint.runtime.backends.base import Backend

ROWS = "ort-cpu-fp32,openvino-fp32,openvino-bf16"


@pytest.fixture(scope="module")
def small_engines(tmp_path_factory):
    """fp32 stand-ins small enough that compiling them twice per row (first and later loads) is quick."""
    return write_standins(tmp_path_factory.mktemp("small-engines"), width=20_000)


@pytest.fixture(scope="module")
def report(small_engines, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov-report")
    args = ["--engines", str(small_engines), "--out", str(out), "--backends", ROWS, "--sizes", "none",
            "--batch", "1", "--budgets", "none", "--runs", "1", "--warmup", "0", "--peak-n", "256",
            "--no-plot"]  # fmt: skip
    assert bench_cli.main(args) == 0
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def _row(rep: dict, key: str) -> dict:
    return next(b for b in rep["backends"] if b["key"] == key)


def test_rows_are_in_the_table_and_run_the_fp32_onnx_in_their_precision():
    fp32, bf16 = BY_KEY["openvino-fp32"], BY_KEY["openvino-bf16"]
    assert {fp32.key, bf16.key} <= set(DEFAULT_KEYS)
    assert fp32.backend is bf16.backend is Backend.OPENVINO and bf16.numeric is Numeric.BF16
    assert (fp32.file_precision, bf16.file_precision) == (Precision.FP32, Precision.FP32)
    assert (fp32.precision, bf16.precision) == (Precision.FP32, Precision.BF16)
    # PyTorch's bf16 row stays an autocast over its fp32 stages
    assert BY_KEY["torch-bf16"].precision is Precision.FP32


def test_openvino_rows_measure_in_their_precision(report):
    rep, md = report
    stages = [s.value for s in STAGES]
    fp32 = _row(rep, "openvino-fp32")["result"]
    (run,) = fp32["pipeline_runs"]
    assert [s["stage"] for s in run["stages"]] == stages
    assert {s["compiled_precision"] for s in run["stages"]} == {"f32"}
    # first and later loads: compiled into an empty cache, then read from it
    loads = fp32["cache_loads"]
    assert [r["stage"] for r in loads] == stages
    assert all(r["first_from_cache"] is False and r["later_from_cache"] is True for r in loads)
    assert all(r["cache_bytes"] > 0 for r in loads)
    assert "first load (compile, write the cache) against later loads" in md
    bf16 = _row(rep, "openvino-bf16")
    if native_bf16_here():
        (run,) = bf16["result"]["pipeline_runs"]
        assert {s["compiled_precision"] for s in run["stages"]} == {"bf16"}
    else:
        assert not bf16["available"] and "bf16 is not native on this CPU" in bf16["reason"]
        assert "| OpenVINO CPU | bf16 | - | not available here: bf16 is not native" in md


def test_bf16_peak_beside_fp32_and_each_row_against_its_own(report):
    rep, md = report
    peak = rep["peak"]
    assert peak["openvino_flops"] > 0
    assert peak["flops"] == max(peak["numpy_flops"], peak["ort_flops"], peak["openvino_flops"])
    if not native_bf16_here():
        assert peak["bf16_flops"] is None and "no native bf16 on this CPU" in peak["bf16_note"]
        assert "bf16 matmul peak: not measured: no native bf16" in md
        return
    assert peak["bf16_flops"] == max(peak["openvino_bf16_flops"], peak["torch_bf16_flops"]) > 0
    assert "Measured bf16 matmul peak, the ceiling of the bf16 rows" in md
    lama_flops = rep["flops"]["lama"]["512"]["total"]
    for key, ceiling in (("openvino-bf16", peak["bf16_flops"]), ("openvino-fp32", peak["flops"])):
        row = _row(rep, key)
        p50 = row["result"]["pipeline_runs"][0]["stages"][0]["stats"]["p50"]  # lama
        expected = 100.0 * lama_flops / p50 / ceiling
        assert pct_of_peak(lama_flops, p50, ceiling) == pytest.approx(expected)
        label = f"| OpenVINO CPU | {row['numeric']} | lama | ok |"
        line = next(x for x in md.splitlines() if x.startswith(label))
        assert line.rstrip(" |").endswith(f"{expected:.0f}%")


def test_header_names_the_cpu_flags_and_the_bf16_verdict(report):
    rep, md = report
    header = md.split("## Latency")[0]
    here = flags_here()
    for flag in ("avx2", "avx512_bf16", "amx_bf16"):
        assert (flag in header) == (flag in here)
    assert ("native bf16: yes" if native_bf16_here() else "native bf16: no") in header
    if native_bf16_here():  # the goals against ONNX Runtime fp32 (2x) are judged in the header
        (h,) = [h for h in rep["bf16_headlines"] if h["base"] == "ONNX Runtime CPU fp32"]
        assert h["goal"] == 2.0 and f"{h['speedup']:.2f}x" in header
    else:
        assert rep["bf16_headlines"] == [] and "OpenVINO bf16 goals" in header and "not judged" in header


def test_a_row_whose_check_or_worker_breaks_fails_alone(standin_engines, tmp_path, monkeypatch):
    """A backend whose availability check raises (a broken install) or whose worker cannot be run is that
    row's failure, with the reason; the other rows are measured and the report is written (exit 1)."""
    real_check, real_worker = bench_cli.unavailable_reason, bench_cli.run_worker

    def check(b, engines, stages):
        if b.key == "openvino-fp32":
            raise RuntimeError("plugin library libopenvino_intel_cpu_plugin.so is damaged")
        return real_check(b, engines, stages)

    def worker(job, progress):
        if job.backend == "ort-cpu-fp16":
            raise OSError("cannot start the worker")
        return real_worker(job, progress)

    monkeypatch.setattr(bench_cli, "unavailable_reason", check)
    monkeypatch.setattr(bench_cli, "run_worker", worker)
    out = tmp_path / "r"
    args = ["--engines", str(standin_engines), "--out", str(out), "--backends",
            "ort-cpu-fp32,ort-cpu-fp16,openvino-fp32", "--sizes", "64", "--batch", "1", "--budgets", "none",
            "--runs", "0", "--warmup", "0", "--peak-n", "128", "--no-plot"]  # fmt: skip
    assert bench_cli.main(args) == 1
    rep = json.loads((out / "report.json").read_text())
    assert "availability check: RuntimeError: plugin library" in _row(rep, "openvino-fp32")["result"]["error"]
    assert "worker: OSError: cannot start the worker" in _row(rep, "ort-cpu-fp16")["result"]["error"]
    assert _row(rep, "ort-cpu-fp32")["result"]["pipeline_runs"]
    md = (out / "report.md").read_text()
    assert "lama scaling only failed: worker: OSError" in md and "failed: availability check" in md
    assert "| ONNX Runtime CPU | fp32 | **end to end** (ensemble) | ok |" in md


def test_bf16_row_availability_says_why(small_engines):
    stages = tuple(pipeline_stages(Pipeline.ENSEMBLE))
    reason = unavailable_reason(BY_KEY["openvino-bf16"], small_engines, stages)
    assert reason is None if native_bf16_here() else "bf16 is not native on this CPU" in reason
    assert unavailable_reason(BY_KEY["openvino-fp32"], small_engines, stages) is None


def test_peak_without_bf16_says_why():
    p = measure_peak(n=128, repeats=1, bf16=False)
    assert p.bf16_flops is None and p.openvino_bf16_flops is None
    assert p.bf16_note == "not measured (not asked)"
