"""benchmarks/lama_scaling.py on a small stand-in LaMa: its timing worker on ONNX Runtime (with the op
profile) and on the product's OpenVINO runner (its compiled-model cache, the precision it compiled for), and
the report rendered from measurements in child processes. Timings are not judged, only their presence."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.benchmarks.profiles import kernel_event, run_event
from tests.benchmarks.scripts import load_script
from tests.cpu_facts import native_bf16_here
from tests.standins import standin_model
from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.export.spec import Stage

SIZES = (32, 64)


@pytest.fixture(scope="module")
def scaling():
    return load_script("lama_scaling")


@pytest.fixture(scope="module")
def lama(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scaling") / "lama.standin.onnx"
    onnx.save(standin_model(Stage.LAMA, width=2_000), str(path))
    return path


def test_ort_worker_times_and_profiles(scaling, lama):
    out = scaling.worker(str(lama), 64, 2, True, "ort", warmup=1)
    assert len(out["wall_s"]) == len(out["cpu_s"]) == 2 and len(out["load"]) == 3
    assert all(t > 0 for t in out["wall_s"]) and out["first_s"] > 0
    # the graph's ops, by ONNX Runtime's names after its optimisations (which add its own, e.g. reorders)
    assert {"Conv", "MatMul", "Sigmoid"} <= set(out["op_share"]) and min(out["op_share"].values()) >= 0
    assert sum(out["op_share"].values()) == pytest.approx(1.0)
    assert "precision" not in out
    assert not list(lama.parent.glob("*.prof*")), "the profile file is left behind"


def test_op_share_is_the_last_runs(scaling, tmp_path):
    """Kernel times of earlier runs (a first run's page faults) must not count: ONNX Runtime's profile
    format, two runs, only the second's kernels in the shares."""

    events = [
        run_event(0, 1_000),
        kernel_event("ConvTranspose", 10, 900),
        kernel_event("Conv", 950, 40),
        run_event(2_000, 300),
        kernel_event("ConvTranspose", 2_010, 100),
        kernel_event("Conv", 2_150, 100),
        kernel_event("MatMul", 2_250, 50),
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(events))
    assert scaling._op_share(str(path)) == {"ConvTranspose": 0.4, "Conv": 0.4, "MatMul": 0.2}
    assert not path.exists()


@pytest.mark.parametrize("runtime", ["openvino-fp32", "openvino-bf16"])
def test_openvino_worker_is_the_products_runner(scaling, lama, runtime):
    if runtime.endswith("bf16") and not native_bf16_here():
        with pytest.raises(BackendUnavailable, match="bf16 is not native"):
            scaling.worker(str(lama), 64, 1, False, runtime)
        return
    out = scaling.worker(str(lama), 64, 1, False, runtime)
    assert out["precision"] == {"openvino-fp32": "f32", "openvino-bf16": "bf16"}[runtime]
    assert len(out["wall_s"]) == 1 and "op_share" not in out
    # the runner's cache: <graph's folder>/<stem>-<path digest>-<version digest>/, filled by the compile
    caches = [p for p in lama.parent.iterdir() if p.is_dir() and p.name.startswith("lama.standin-")]
    assert len(caches) == 1 and any(caches[0].iterdir())


def test_report_from_child_processes(scaling, lama, monkeypatch):
    monkeypatch.setattr(scaling, "SIZES", SIZES)
    paths = {"plain": lama, "factored": lama}
    samples = scaling.measure(paths, {s: 1 for s in SIZES}, rounds=2, runtime="ort", warmup=1)
    for per in samples.values():
        assert set(per) == set(SIZES)
        assert all(per[s]["round"] == [0, 1] and len(per[s]["first_s"]) == 2 for s in SIZES)
        assert "op_share" in per[SIZES[0]]  # round 1 profiles
    loads = [x for per in samples.values() for s in per.values() for x in s["load"]]
    data = {
        "date": "now",
        "machine": scaling.machine(),
        "runtime": "ort",
        "warmup": 1,
        "flops": {n: {str(s): v for s, v in scaling.flops(p).items()} for n, p in paths.items()},
        "samples": {n: {str(s): v for s, v in per.items()} for n, per in samples.items()},
        "load_min": min(loads),
        "load_max": max(loads),
    }
    text = scaling.render(data)
    assert "and 1 warm-up run are not counted" in text
    rows = [line for line in text.splitlines() if line.startswith(("| plain |", "| factored |"))]
    # per graph: one row per size, one in each ratio table (CPU and wall seconds), one per size of the profile
    assert len(rows) == 2 * (len(SIZES) + 2 + len(SIZES))
    assert f"{SIZES[-1]} vs {SIZES[0]}, CPU seconds per megapixel" in text
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "nan" not in cells and "inf" not in cells
