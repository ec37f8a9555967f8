"""Does a TensorRT-RTX engine built for some compute capabilities run on this GPU? (the pure decision, and
what an older manifest without the record gives)."""

from __future__ import annotations

import pytest

from tests.standins import stage_record, write_records
from trt_inpaint.export.manifest import Artefact
from trt_inpaint.export.spec import Stage
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.engines import EngineDir

DEFAULT = ["8.6", "8.9", "12.x"]


@pytest.mark.parametrize("cc", [(8, 6), (8, 9), (12, 0), (12, 1)])
def test_covered(cc):
    assert gpu.target_problem(DEFAULT, cc) is None


def test_hopper():
    text = gpu.target_problem(DEFAULT, (9, 0))
    assert text.startswith("engine built for compute capabilities 8.6, 8.9, 12.x; this GPU is 9.0")
    assert "Hopper is not supported by TensorRT-RTX" in text and "--backend ort-cuda" in text
    assert "full TensorRT" in text and "\n" not in text


def test_turing_needs_its_own_engines():
    text = gpu.target_problem(DEFAULT, (7, 5))
    assert "this GPU is 7.5 (Turing)" in text and "--rtx-targets sm75" in text
    assert gpu.target_problem(["7.5", *DEFAULT], (7, 5)) is None


def test_exact_minor_and_blackwell_wildcard():
    assert gpu.target_problem(["8.9"], (8, 6)) is not None
    assert gpu.target_problem(["8.9"], (12, 0)) is not None
    assert gpu.target_problem(["12.x"], (10, 0)) is not None


def test_no_nvml_here_means_no_check():
    if isinstance(gpu._nvml(), str):
        assert gpu.compute_capability() is None and gpu.shared_compute_capability() is None
    else:
        cc = gpu.compute_capability()
        assert isinstance(cc, tuple) and len(cc) == 2 and cc[0] >= 3


def _engine_record(info: dict):
    return stage_record(Stage.MAT, artefacts={"engine": Artefact("mat.fp16.engine", "", 6, "", info=info)})


def test_older_manifest_without_targets(tmp_path):
    info = {"builder": "tensorrt-rtx", "version": "1.7"}
    write_records(tmp_path, _engine_record(info))
    facts = EngineDir(tmp_path).stage_facts(Stage.MAT)
    assert facts.trt_module == "tensorrt_rtx" and facts.compute_capabilities is None
    info["target"] = {"compute_capabilities": ["8.9"]}
    write_records(tmp_path, _engine_record(info))
    assert EngineDir(tmp_path).stage_facts(Stage.MAT).compute_capabilities == ("8.9",)


def test_auto_passes_over_engines_built_for_other_gpus(tmp_path, monkeypatch):
    """files_problem (what AUTO asks before choosing TensorRT) names the stage and the GPU mismatch."""
    from trt_inpaint.export.spec import Precision, engine_filename
    from trt_inpaint.runtime.backends.base import Backend
    from trt_inpaint.runtime.backends.registry import files_problem

    info = {"builder": "tensorrt-rtx", "version": "1.7", "target": {"compute_capabilities": DEFAULT}}
    write_records(tmp_path, _engine_record(info))
    (tmp_path / engine_filename(Stage.MAT, Precision.FP16)).write_bytes(b"engine")
    ed = EngineDir(tmp_path)
    # the GPU's compute capability is the one thing made up here (no GPU on this machine)
    monkeypatch.setattr(gpu, "shared_compute_capability", lambda: (9, 0))
    text = files_problem(ed, Backend.TENSORRT, [Stage.MAT], Precision.FP16)
    assert text.startswith("mat: engine built for compute capabilities") and "Hopper" in text
    monkeypatch.setattr(gpu, "shared_compute_capability", lambda: (8, 9))
    assert files_problem(ed, Backend.TENSORRT, [Stage.MAT], Precision.FP16) is None
    monkeypatch.setattr(gpu, "shared_compute_capability", lambda: None)  # no GPU known: no verdict
    assert files_problem(ed, Backend.TENSORRT, [Stage.MAT], Precision.FP16) is None
