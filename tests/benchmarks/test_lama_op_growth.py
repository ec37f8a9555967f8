"""benchmarks/lama_op_growth.py on a small stand-in LaMa: its profiling worker in a child process (two sizes
in one process, only the counted runs in its figures) and the report rendered from that; the kernel-time
parser it shares with lama_scaling.py on ONNX Runtime's profile format. Timings are not judged, only their
presence and bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.benchmarks.profiles import kernel_event, run_event
from tests.benchmarks.scripts import load_script
from tests.standins import standin_model
from trt_inpaint.export.spec import Stage

RUNS = {32: 2, 64: 1}


@pytest.fixture(scope="module")
def growth():
    load_script("lama_scaling")
    return load_script("lama_op_growth")


@pytest.fixture(scope="module")
def measured(growth, tmp_path_factory) -> tuple[dict, Path]:
    path = tmp_path_factory.mktemp("growth") / "lama.standin.onnx"
    onnx.save(standin_model(Stage.LAMA, width=2_000), str(path))
    return growth.measure({"plain": path, "no DFT": path}, RUNS, rounds=2, warmup=1), path


def test_worker_counts_only_the_rounds(measured):
    samples, path = measured
    for per in samples.values():
        assert len(per["load"]) == 5  # before the rounds and after each, profiled and not
        for size, n in RUNS.items():
            s = per[str(size)]
            assert s["runs"] == 2 * n == len(s["run_s_per_mp"])  # warm-up and first runs not counted
            # the same rounds again, unprofiled and timed
            assert len(s["unprofiled_wall_s_per_mp"]) == len(s["unprofiled_cpu_s_per_mp"]) == 2 * n
            assert min(s["unprofiled_wall_s_per_mp"] + s["unprofiled_cpu_s_per_mp"]) > 0
            ops = s["kernel_s_per_mp"]
            assert {"Conv", "MatMul", "Sigmoid"} <= set(ops) and min(ops.values()) >= 0
            # kernels run inside the runs: their sum per MP cannot exceed the runs' own
            assert 0 < sum(ops.values()) <= sum(s["run_s_per_mp"]) / s["runs"]
    assert not [p for p in path.parent.iterdir() if p.name != path.name], "profiles left behind"


def test_report(growth, measured):
    samples, _ = measured
    lama_scaling = load_script("lama_scaling")
    data = {"date": "now", "machine": lama_scaling.machine(), "sizes": sorted(RUNS), "rounds": 2, "warmup": 1}
    data["runs"], data["samples"] = {str(s): n for s, n in RUNS.items()}, samples
    text = growth.render(json.loads(json.dumps(data)))  # as read back from the .json
    assert "2 rounds of 2 at 32 + 1 at 64" in text
    for name in samples:
        rows = [r for r in text.splitlines() if r.startswith(f"| {name} |")]
        labels = [r.split("|")[2].strip() for r in rows]
        assert labels[-5:-2] == ["other", "**all kernels**", "**profiled run**"] and "Conv" in labels
        assert labels[-2:] == ["**unprofiled run, wall**", "**unprofiled run, CPU**"]
        kernels = next(r for r in rows if "**all kernels**" in r).split("|")
        a = samples[name]["32"]["kernel_s_per_mp"]
        assert float(kernels[3]) == pytest.approx(sum(a.values()), abs=1e-3)
        for row in rows:
            assert "nan" not in row and "inf" not in row


def test_kernel_time_sums_only_the_given_runs(growth, tmp_path):
    scaling = load_script("lama_scaling")

    events = [
        run_event(0, 1_000),
        kernel_event("Pad", 10, 900),
        run_event(2_000, 300),
        kernel_event("Pad", 2_010, 100),
        kernel_event("Conv", 2_150, 100),
        run_event(3_000, 300),
        kernel_event("Pad", 3_010, 50),
        {"cat": "Node", "name": "n3100_fence_before", "ts": 3_100, "dur": 7, "args": {"op_name": "Conv"}},
    ]
    runs = scaling.model_runs(events)
    assert [r["ts"] for r in runs] == [0, 2_000, 3_000]
    assert scaling.kernel_time(events, runs[1:]) == {"Pad": 150, "Conv": 100}
