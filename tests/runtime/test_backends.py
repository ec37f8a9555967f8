"""Backends and their selection: what runs here, what does not and why, and damaged engine files."""

import json
import shutil

import numpy as np
import onnx
import pytest

from tests.standins import stage_record, standin_model, write_records, write_standins
from trt_inpaint.errors import BackendUnavailable, EngineError
from trt_inpaint.export.manifest import Artefact
from trt_inpaint.export.spec import Precision, Stage, onnx_filename, random_feeds, spec
from trt_inpaint.runtime.backends.base import Backend
from trt_inpaint.runtime.backends.onnxruntime import OrtRunner
from trt_inpaint.runtime.backends.registry import AUTO_ORDER, select
from trt_inpaint.runtime.engines import EngineDir
from trt_inpaint.runtime.gpu import gpu_problem

ALL = list(Stage)


def test_auto_picks_a_backend_and_says_why_faster_ones_were_passed_over(engines):
    """The stand-ins folder holds fp32 ONNX only: TensorRT is passed over on every machine (no engines, or
    no GPU); without a GPU ONNX Runtime CUDA is too, and OpenVINO (part of the dev install) runs."""
    sel = select(Backend.AUTO, EngineDir(engines), ALL)
    faster = AUTO_ORDER[: AUTO_ORDER.index(sel.backend)]
    assert sel.backend in (Backend.ORT_CUDA, Backend.OPENVINO), sel.describe()
    assert set(sel.passed_over) == set(faster) and all(sel.passed_over.values())
    assert "auto passed over tensorrt" in sel.describe()
    if gpu_problem():  # this machine: no GPU
        assert sel.backend is Backend.OPENVINO, sel.describe()
        assert gpu_problem() in sel.passed_over[Backend.TENSORRT]
    else:
        assert "engine" in sel.passed_over[Backend.TENSORRT]


def test_tensorrt_names_what_is_missing(engines):
    """Without a GPU: BackendUnavailable naming the missing GPU; with one: EngineError naming the missing
    engine file (the stand-ins folder has ONNX only)."""
    if gpu_problem():
        with pytest.raises(BackendUnavailable, match="backend tensorrt cannot run: no NVIDIA"):
            select(Backend.TENSORRT, EngineDir(engines), ALL)
    else:
        with pytest.raises(EngineError, match=r"missing lama\.fp32\.engine"):
            select(Backend.TENSORRT, EngineDir(engines), ALL)


def test_ort_cpu_prefers_fp32_and_falls_back_to_fp16(tmp_path):
    folder = tmp_path / "e"
    folder.mkdir()
    import onnx

    onnx.save(standin_model(Stage.LAMA, 100), str(folder / onnx_filename(Stage.LAMA, Precision.FP16)))
    sel = select(Backend.ORT_CPU, EngineDir(folder), [Stage.LAMA])
    assert sel.precision is Precision.FP16
    with pytest.raises(EngineError, match=r"lama.fp32.onnx.*export-engines"):
        select(Backend.ORT_CPU, EngineDir(folder), [Stage.LAMA], Precision.FP32)


def test_file_size_differing_from_manifest_is_an_engine_error(tmp_path, engines):
    folder = tmp_path / "e"
    shutil.copytree(engines, folder)
    name = onnx_filename(Stage.LAMA, Precision.FP32)
    write_records(folder, stage_record(Stage.LAMA, artefacts={"onnx_fp32": Artefact(name, "", 12, "")}))
    with pytest.raises(EngineError, match="manifest recorded 12"):
        select(Backend.ORT_CPU, EngineDir(folder), [Stage.LAMA])


def test_ort_runner_contract(engines):
    stage = Stage.MAT
    s = spec(stage)
    feeds = random_feeds(stage, 1, 0)
    rng = np.random.default_rng(0)
    feeds["image"] = rng.random((1, 3, 512, 512), dtype=np.float32)
    feeds["mask"] = (rng.random((1, 1, 512, 512)) < 0.3).astype(np.float32)
    runner = OrtRunner(stage, engines / onnx_filename(stage, Precision.FP32))
    assert not runner.is_loaded
    with runner:
        assert runner.is_loaded and runner.footprint > 0
        out = runner.run(feeds)[s.output_names[0]]
    assert not runner.is_loaded and runner.load_count == 1
    keep = feeds["mask"] == 0
    assert out.shape == (1, 3, 512, 512)
    assert np.array_equal(
        np.broadcast_to(keep, out.shape) * out, np.broadcast_to(keep, out.shape) * feeds["image"]
    )


_LOAD_IN_A_FRESH_PROCESS = """
import json, sys
from trt_inpaint.export.spec import Stage
from trt_inpaint.runtime.backends.onnxruntime import OrtRunner
from trt_inpaint.runtime.gpu import process_rss
runner = OrtRunner(Stage.LAMA, sys.argv[1])
before = process_rss()
runner.load()
held = process_rss() - before
print(json.dumps({"estimate": runner.estimate_footprint(), "footprint": runner.footprint, "held": held}))
"""


def test_ort_cpu_footprint_is_the_memory_a_load_holds(tmp_path):
    """A model of a few KB that holds 96 MiB once loaded (a constant ONNX Runtime computes at load): the
    footprint follows the resident memory (as the script measures it, apart from the runner), not the
    file size that the estimate is. In a fresh process: in this one, memory that earlier tests freed
    can serve the load without the resident size growing."""
    import subprocess
    import sys

    resident = 96 << 20
    path = tmp_path / onnx_filename(Stage.LAMA, Precision.FP32)
    onnx.save(standin_model(Stage.LAMA, 100, resident=resident), str(path))
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["estimate"] == path.stat().st_size < 100_000
    assert got["held"] > 0.9 * resident  # the model really holds it
    assert 0.9 * resident <= got["footprint"] <= got["held"] + (16 << 20), got


def test_model_with_wrong_tensor_names_is_rejected(tmp_path):
    folder = write_standins(tmp_path / "e", width=10, stages=(Stage.LAMA,))
    # a denoiser graph saved under the combiner's name: its inputs do not match the combiner's spec
    import onnx

    onnx.save(standin_model(Stage.LAMA_DENOISER, 10), str(folder / onnx_filename(Stage.COMBINER, "fp32")))
    with pytest.raises(EngineError, match="do not match stage combiner"):
        OrtRunner(Stage.COMBINER, folder / onnx_filename(Stage.COMBINER, "fp32")).load()


def test_corrupt_tensorrt_engine_is_an_engine_error(tmp_path):
    """tensorrt_rtx is part of the dev install; its runtime deserializes without a GPU."""
    from trt_inpaint.runtime.backends.tensorrt import TrtRunner

    path = tmp_path / "lama.fp16.engine"
    path.write_bytes(b"\x00" * 64 + b"this is no engine" * 10)
    with pytest.raises(EngineError, match="cannot deserialize the engine") as err:
        TrtRunner(Stage.LAMA, path, module="tensorrt_rtx").load()
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_engine_from_another_tensorrt_version_is_refused(tmp_path):
    import tensorrt_rtx as trt

    from trt_inpaint.runtime.backends.tensorrt import TrtRunner

    path = tmp_path / "lama.fp16.engine"
    path.write_bytes(b"x")
    with pytest.raises(EngineError, match=f"this is {trt.__version__}"):
        TrtRunner(Stage.LAMA, path, module="tensorrt_rtx", expect_version="0.0.1").load()


@pytest.fixture(scope="module")
def rtx_engine(tmp_path_factory):
    """A TensorRT-RTX engine of the LaMa stand-in, built here on the CPU (default GPU targets)."""
    from trt_inpaint.export.engine import Builder, build_engine

    folder = write_standins(tmp_path_factory.mktemp("rtx") / "e", width=1000, stages=(Stage.LAMA,))
    onnx_path, engine_path = folder / "lama.fp32.onnx", folder / "lama.fp32.engine"
    build = build_engine(onnx_path, engine_path, spec(Stage.LAMA).profile(256), Builder.TENSORRT_RTX)
    return onnx_path, engine_path, tuple(build.target["compute_capabilities"])


@pytest.mark.skipif(gpu_problem() is None, reason="a GPU is visible: this checks the error without one")
def test_real_tensorrt_rtx_engine_without_gpu_is_unavailable(rtx_engine):
    from trt_inpaint.runtime.backends.tensorrt import TrtRunner

    _, engine_path, _ = rtx_engine
    with pytest.raises(BackendUnavailable, match="no usable GPU"):
        TrtRunner(Stage.LAMA, engine_path, module="tensorrt_rtx").load()


@pytest.mark.gpu
def test_real_tensorrt_rtx_engine_on_gpu(rtx_engine):
    """On a GPU the engine's targets cover: it matches ONNX Runtime; on one they do not (Hopper, Turing):
    the runner refuses it with the way out, before deserializing."""
    from trt_inpaint.runtime import gpu
    from trt_inpaint.runtime.backends.tensorrt import TrtRunner

    onnx_path, engine_path, targets = rtx_engine
    runner = TrtRunner(Stage.LAMA, engine_path, module="tensorrt_rtx", targets=targets)
    cc = gpu.shared_compute_capability()
    assert cc is not None
    problem = gpu.target_problem(list(targets), cc)
    if problem:
        with pytest.raises(EngineError, match="--backend ort-cuda"):
            runner.load()
        return
    rng = np.random.default_rng(0)
    feeds = {"image": rng.random((1, 3, 128, 192), dtype=np.float32)}
    feeds["mask"] = (rng.random((1, 1, 128, 192)) < 0.3).astype(np.float32)
    with runner, OrtRunner(Stage.LAMA, onnx_path) as ort:
        assert runner.footprint > engine_path.stat().st_size
        got, ref = runner.run(feeds)["output"], ort.run(feeds)["output"]
    np.testing.assert_allclose(got, ref, atol=2e-3)
