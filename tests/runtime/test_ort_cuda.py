"""ONNX Runtime CUDA is trusted only when a session really got it, and a double install is found at start-up.

All with the real onnxruntime of this machine (the CPU build): asking it for CUDA is exactly the silent
fallback that a GPU machine without cuDNN shows. Double installs: real .dist-info metadata in temporary
folders, read by the real importlib.metadata.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.export.spec import Stage, onnx_filename
from trt_inpaint.runtime.backends import onnxruntime as O
from trt_inpaint.runtime.gpu import gpu_problem


def _quiet():
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return so


def _cuda_runs() -> bool:
    return O.cuda_problem() is None  # a GPU machine with onnxruntime-gpu (the GPU check runs this file)


def test_asking_for_cuda_silently_gets_the_cpu_and_is_caught():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = ort.InferenceSession(
            O._probe_model(), _quiet(), providers=[(O.CUDA_EP, {"device_id": 0}), "CPUExecutionProvider"]
        )
    if _cuda_runs():  # pragma: no cover - GPU machine
        assert session.get_providers()[0] == O.CUDA_EP
        O.require_provider(session, ort)
        return
    assert caught  # ONNX Runtime only warns ...
    assert session.get_providers()[0] == "CPUExecutionProvider"  # ... and runs on the CPU
    with pytest.raises(BackendUnavailable) as err:
        O.require_provider(session, ort)
    text = str(err.value)
    assert "fell back to CPUExecutionProvider" in text
    assert "has no CUDAExecutionProvider" in text and "trt-inpaint[gpu]" in text and "\n" not in text


def test_cuda_session_refuses_the_fallback():
    if _cuda_runs():  # pragma: no cover - GPU machine
        session = O.cuda_session(ort, O._probe_model(), _quiet(), {"device_id": 0})
        assert session.get_providers()[0] == O.CUDA_EP
        return
    with pytest.raises(BackendUnavailable, match="fell back to CPUExecutionProvider"):
        O.cuda_session(ort, O._probe_model(), _quiet(), {"device_id": 0})


def test_cuda_problem_names_the_reason_here():
    problem = O.cuda_problem()
    if O.CUDA_EP in ort.get_available_providers() and not gpu_problem():  # a GPU machine with ORT-GPU
        assert problem is None  # pragma: no cover
        return
    assert problem and "\n" not in problem
    assert O.CUDA_EP in problem or "GPU" in problem or "NVML" in problem
    assert O.cuda_problem_isolated() == problem  # the same answer from a fresh interpreter


def test_ort_cuda_runner_never_runs_on_the_cpu(engines):
    runner = O.OrtRunner(Stage.LAMA, engines / onnx_filename(Stage.LAMA, "fp32"), device="cuda")
    if O.cuda_problem() is None:  # pragma: no cover - GPU machine
        with runner:
            assert runner.providers[0] == O.CUDA_EP
        return
    with pytest.raises(BackendUnavailable, match="ort-cuda"):
        runner.load()
    assert not runner.is_loaded and runner.providers == ()


def test_cpu_runner_records_its_provider(engines):
    with O.OrtRunner(Stage.LAMA, engines / onnx_filename(Stage.LAMA, "fp32")) as runner:
        assert runner.providers == ("CPUExecutionProvider",)


def test_dlopen_problem_names_the_missing_library():
    """A real library whose dependency the loader cannot find (TensorRT-RTX's Python binding, before the
    package has loaded its own libraries), in a fresh interpreter."""
    spec = importlib.util.find_spec("tensorrt_rtx_bindings")
    assert spec is not None, "tensorrt_rtx (dev dependency) is missing"
    binding = next(Path(spec.submodule_search_locations[0]).glob("tensorrt_rtx*.so"))
    code = "from trt_inpaint.runtime.backends.onnxruntime import dlopen_problem as d; import sys\n"
    code += "print(d(sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(binding)], capture_output=True, text=True, timeout=60
    )
    assert "libtensorrt_rtx.so" in out.stdout and "cannot open shared object file" in out.stdout, out
    assert O.dlopen_problem(Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_shared.so") is None


def _dist(folder: Path, name: str, version: str, top: str = "onnxruntime") -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(top + "\n")


def test_double_install_in_one_folder(tmp_path):
    site = tmp_path / "site"
    _dist(site, "onnxruntime", "1.30.0")
    _dist(site, "onnxruntime-gpu", "1.31.1")
    _dist(site, "onnxruntime-genai", "0.9.0", top="onnxruntime_genai")  # another package: not counted
    found = {(d.name, d.version) for d in O.ort_distributions([str(site)])}
    assert found == {("onnxruntime", "1.30.0"), ("onnxruntime-gpu", "1.31.1")}
    problem = O.install_problem([str(site)])
    assert problem and "\n" not in problem
    assert "onnxruntime 1.30.0 and onnxruntime-gpu 1.31.1" in problem and str(site.resolve()) in problem
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in problem and "#26996" in problem


def test_two_folders_are_fine_when_the_gpu_build_comes_first(tmp_path):
    """The GPU check's layout: onnxruntime-gpu in a --target folder on PYTHONPATH, before the system's CPU
    onnxruntime; the other order imports the build without CUDA."""
    gpu_site, cpu_site = tmp_path / "target", tmp_path / "system"
    _dist(gpu_site, "onnxruntime-gpu", "1.31.1")
    _dist(cpu_site, "onnxruntime", "1.30.0")
    assert O.install_problem([str(gpu_site), str(cpu_site)]) is None
    behind = O.install_problem([str(cpu_site), str(gpu_site)])
    assert behind and "onnxruntime 1.30.0" in behind and "comes before onnxruntime-gpu 1.31.1" in behind
    assert "pip uninstall -y onnxruntime" in behind and "\n" not in behind


def test_this_machine_imports_one_onnxruntime():
    dists = O.ort_distributions()
    assert ort.__version__ in {d.version for d in dists}
    assert O.install_problem() is None


def test_preload_is_harmless_on_a_cpu_build_and_keeps_stdout_clean(capfd):
    O.preload_failures.cache_clear()
    failures = O.preload_failures()
    assert capfd.readouterr().out == ""
    if O.CUDA_EP not in ort.get_available_providers():  # a CPU build: preload_dlls does nothing
        assert failures == ()


def test_missing_onnxruntime_says_which_extra(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        sys.modules["onnxruntime"] = None  # as if not installed
        from trt_inpaint.runtime.backends.onnxruntime import cuda_problem
        print(cuda_problem())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "trt-inpaint[cpu]" in out.stdout and "trt-inpaint[gpu]" in out.stdout, out


def test_cuda_runner_output_matches_cpu_on_a_gpu(engines):
    """On a GPU machine with onnxruntime-gpu (the GPU check runs this file): CUDA agrees with the CPU."""
    if O.cuda_problem() is not None:
        assert O.cuda_problem()  # here: a reason, checked above; nothing runs on CUDA
        return
    rng = np.random.default_rng(0)  # pragma: no cover - GPU machine
    feeds = {"image": rng.random((1, 3, 64, 64), dtype=np.float32)}
    feeds["mask"] = (rng.random((1, 1, 64, 64)) < 0.3).astype(np.float32)
    path = engines / onnx_filename(Stage.LAMA, "fp32")
    with O.OrtRunner(Stage.LAMA, path, device="cuda") as gpu_run, O.OrtRunner(Stage.LAMA, path) as cpu_run:
        np.testing.assert_allclose(gpu_run.run(feeds)["output"], cpu_run.run(feeds)["output"], atol=1e-3)
        assert gpu_run.footprint > 0
