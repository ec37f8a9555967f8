"""The ONNX Runtime and OpenVINO paths never import torch: checked in fresh interpreters, not with mocks."""

import subprocess
import sys
from pathlib import Path

from trt_inpaint.samples import sample_pairs

BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (blocked by the test)", name="torch")
        return None
sys.meta_path.insert(0, _NoTorch())
"""

RUN_CLI = """
import sys
import trt_inpaint.runtime
from trt_inpaint.runtime.cli import main
rc = main([{img!r}, {mask!r}, "-o", {out!r}, "--engines", {engines!r}, "--backend", {backend!r}])
assert rc == 0, rc
assert not {uses!r} or {uses!r} in sys.modules, "the run did not use {uses}"
bad = sorted(m for m in ("torch", "tensorrt", "tensorrt_rtx") if m in sys.modules)
assert not bad, f"the {backend} path imported {{bad}}"
print("NO-TORCH-OK")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _code(tmp_path: Path, engines: Path, backend: str, uses: str = "onnxruntime") -> str:
    img, mask = sample_pairs()[0]
    return RUN_CLI.format(img=str(img), mask=str(mask), out=str(tmp_path / "o.png"), engines=str(engines),
                          backend=backend, uses=uses)  # fmt: skip


def test_ort_cpu_run_does_not_import_torch(tmp_path, engines):
    proc = _run(_code(tmp_path, engines, "ort-cpu"))
    assert proc.returncode == 0 and "NO-TORCH-OK" in proc.stdout, proc.stderr[-2000:]
    assert (tmp_path / "o.png").is_file()


def test_auto_runs_with_torch_absent(tmp_path, engines):
    """Without an NVIDIA GPU, auto takes OpenVINO (part of the dev install)."""
    proc = _run(BLOCK_TORCH + _code(tmp_path, engines, "auto", uses="openvino"))
    assert proc.returncode == 0 and "NO-TORCH-OK" in proc.stdout, proc.stderr[-2000:]
    assert "backend openvino" in proc.stderr


def test_openvino_run_does_not_import_torch(tmp_path, engines):
    proc = _run(BLOCK_TORCH + _code(tmp_path, engines, "openvino", uses="openvino"))
    assert proc.returncode == 0 and "NO-TORCH-OK" in proc.stdout, proc.stderr[-2000:]
    assert (tmp_path / "o.png").is_file()


def test_torch_backend_without_torch_says_why(tmp_path, engines):
    code = _code(tmp_path, engines, "torch", uses="")
    code = BLOCK_TORCH + code.replace("assert rc == 0, rc", "assert rc == 5, rc")
    proc = _run(code)
    assert proc.returncode == 0 and "NO-TORCH-OK" in proc.stdout, proc.stderr[-2000:]
    assert "torch is not installed" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_importing_the_runtime_is_light():
    proc = _run(
        "import sys, trt_inpaint.runtime, trt_inpaint.runtime.cli, trt_inpaint.runtime.api\n"
        "heavy = ('torch', 'onnxruntime', 'openvino', 'tensorrt', 'tensorrt_rtx')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_tensorrt_path_does_not_import_torch(tmp_path, engines):
    """What a CPU machine can show of the TensorRT path: choosing it (the GPU check says no GPU: exit 5),
    importing its runner module and tensorrt_rtx, and making a runner. Running an engine needs a GPU."""
    code = BLOCK_TORCH + _code(tmp_path, engines, "tensorrt", uses="").replace(
        "assert rc == 0, rc", "assert rc == 5, rc"
    )
    code = code.replace(
        'bad = sorted(m for m in ("torch", "tensorrt", "tensorrt_rtx") if m in sys.modules)',
        "import tensorrt_rtx\n"
        "from trt_inpaint.runtime.backends.tensorrt import TrtRunner\n"
        "from trt_inpaint.export.spec import Stage\n"
        "TrtRunner(Stage.LAMA, 'lama.fp16.engine', module='tensorrt_rtx')\n"
        'bad = sorted(m for m in ("torch",) if m in sys.modules)',
    )
    proc = _run(code)
    assert proc.returncode == 0 and "NO-TORCH-OK" in proc.stdout, proc.stderr[-2000:]
    assert "backend tensorrt cannot run" in proc.stderr


def test_manifest_reader_and_stage_table_import_no_torch(engines):
    """The runtime's manifest facts come from export.manifest and the stage table from export.spec: both
    load and work with torch absent, and pull in no other heavy module."""
    proc = _run(
        BLOCK_TORCH
        + "import sys\n"
        + "from trt_inpaint.export.manifest import read_manifest\n"
        + "from trt_inpaint.export.spec import STAGES\n"
        + "from trt_inpaint.runtime.engines import EngineDir\n"
        + f"m = read_manifest({str(engines)!r})\n"
        + "assert set(m.stages) == {s.value for s in STAGES}, m.stages\n"
        + f"ed = EngineDir({str(engines)!r})\n"
        + "assert all(ed.stage_facts(s).record is not None for s in STAGES)\n"
        + "assert all(row.weights_flag for row in STAGES.values())\n"
        + "heavy = ('torch', 'onnx', 'onnxruntime', 'tensorrt', 'tensorrt_rtx')\n"
        + "heavy = [x for x in heavy if x in sys.modules]\n"
        + "assert not heavy, heavy\n"
        + "print('NO-TORCH-OK')\n"
    )
    assert proc.returncode == 0 and "NO-TORCH-OK" in proc.stdout, proc.stderr[-2000:]
