"""TensorRT-RTX target architectures: the option, the CLI flag, the manifest record, the staleness key, and
the runtime's reading of the manifest (tiny models, the real TensorRT-RTX builder on this CPU)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_inpaint.errors import EngineError
from trt_inpaint.export import spec as S
from trt_inpaint.export.build import Exporter, ExportOptions
from trt_inpaint.export.calibration import CalibrationOptions
from trt_inpaint.export.cli import main
from trt_inpaint.export.engine import DEFAULT_RTX_TARGETS, Builder, RtxTarget, build_engine, parse_rtx_targets
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.engines import EngineDir

STAGE = S.Stage.FINAL_DENOISER


def _opts(out, **kw) -> ExportOptions:
    return ExportOptions(
        out_dir=out, tiny=True, stages=(STAGE,), builder=Builder.TENSORRT_RTX, min_size=64, max_size=128,
        max_batch=1, calibration=CalibrationOptions(size=64, max_images=1), **kw,
    )  # fmt: skip


def _ccs(out) -> list[str]:
    manifest = json.loads((out / S.MANIFEST_NAME).read_text())
    return manifest["stages"][STAGE.value]["artefacts"]["engine"]["info"]["target"]["compute_capabilities"]


@pytest.fixture(scope="module")
def default_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("rtx")
    _, reports = Exporter(_opts(out)).run()
    return out, reports


def test_parse_targets():
    assert parse_rtx_targets("sm120, SM86") == (RtxTarget.SM86, RtxTarget.SM120)
    assert [t.cc for t in parse_rtx_targets("sm75,sm89,sm120")] == ["7.5", "8.9", "12.x"]
    assert RtxTarget.SM75 not in DEFAULT_RTX_TARGETS
    for bad in ("sm90", "sm86,sm80", ""):
        with pytest.raises(ValueError, match="sm75, sm86, sm89, sm120"):
            parse_rtx_targets(bad)


def test_cli_rejects_unknown_target(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--rtx-targets", "sm90", "--builder", "none"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--rtx-targets" in err and "sm90" in err and "sm75, sm86, sm89, sm120" in err


def test_default_targets_recorded_and_read_back(default_export):
    out, reports = default_export
    assert reports[0].status.endswith("engine)")
    assert _ccs(out) == ["8.6", "8.9", "12.x"]
    facts = EngineDir(out).stage_facts(STAGE)
    assert facts.trt_module == "tensorrt_rtx" and facts.compute_capabilities == ("8.6", "8.9", "12.x")
    assert gpu.target_problem(list(facts.compute_capabilities), (8, 9)) is None
    assert "Hopper" in gpu.target_problem(list(facts.compute_capabilities), (9, 0))


def test_new_targets_rebuild_only_the_engine(default_export, tmp_path):
    out, _ = default_export
    _, reports = Exporter(_opts(out)).run()
    assert reports[0].status == "reused"
    _, reports = Exporter(_opts(out, rtx_targets=(RtxTarget.SM89,))).run()
    assert reports[0].status == "built (engine)"
    assert _ccs(out) == ["8.9"]
    assert EngineDir(out).stage_facts(STAGE).compute_capabilities == ("8.9",)
    _, reports = Exporter(_opts(out, rtx_targets=DEFAULT_RTX_TARGETS)).run()
    assert reports[0].status == "built (engine)" and _ccs(out) == ["8.6", "8.9", "12.x"]


def test_runner_refuses_a_gpu_outside_the_targets(default_export, monkeypatch):
    """The GPU's compute capability is the one stand-in (there is no GPU here); the manifest, the registry and
    the runner are real. The check comes before the engine is read."""
    from trt_inpaint.runtime.backends.base import Backend
    from trt_inpaint.runtime.backends.registry import Selection, make_runner

    out, _ = default_export
    monkeypatch.setattr(gpu, "shared_compute_capability", lambda: (9, 0))
    runner = make_runner(Selection(Backend.TENSORRT, S.Precision.FP16), STAGE, EngineDir(out))
    with pytest.raises(EngineError) as err:
        runner.load()
    text = str(err.value)
    assert "\n" not in text and S.engine_filename(STAGE, S.Precision.FP16) in text
    assert "8.6, 8.9, 12.x" in text and "9.0" in text and "Hopper" in text and "ort-cuda" in text


CLI_ARGS = ["--random-init", "--stages", STAGE.value, "--max-size", "128", "--min-size", "64"]
CLI_ARGS += ["--max-batch", "1", "--calibration-size", "64", "--calibration-images", "1"]


def test_cli_targets_flag(tmp_path, capsys):
    out = tmp_path / "e"
    args = [*CLI_ARGS, "--out", str(out), "--builder", "tensorrt-rtx"]
    assert main([*args, "--rtx-targets", "sm89"]) == 0
    assert _ccs(out) == ["8.9"]
    assert "compute capabilities 8.9 " in capsys.readouterr().err
    assert main([*args, "--rtx-targets", "sm89,sm86"]) == 0
    assert f"{STAGE.value:15s} built (engine)" in capsys.readouterr().out
    assert _ccs(out) == ["8.6", "8.9"]


def test_cli_targets_ignored_without_rtx_builder(tmp_path, capsys):
    out = tmp_path / "e"
    assert main([*CLI_ARGS, "--out", str(out), "--builder", "none", "--rtx-targets", "sm75"]) == 0
    assert "--rtx-targets is ignored" in capsys.readouterr().err
    assert "engine" not in json.loads((out / S.MANIFEST_NAME).read_text())["stages"][STAGE.value]["artefacts"]


def _fp32_matmul(path) -> None:
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 8, 8])
    w = onnx.numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")
    nodes = [helper.make_node("MatMul", ["image", "w"], ["m"]), helper.make_node("Relu", ["m"], ["output"])]
    graph = helper.make_graph(nodes, "mm", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_turing_dropped_when_it_cannot_build_fp32_matmuls(tmp_path):
    path = tmp_path / "mm.onnx"
    _fp32_matmul(path)
    profile = {"image": ((1, 3, 8, 8),) * 3}
    eb = build_engine(
        path,
        tmp_path / "a.engine",
        profile,
        Builder.TENSORRT_RTX,
        rtx_targets=(RtxTarget.SM75, RtxTarget.SM89),
    )
    assert eb.target["compute_capabilities"] == ["8.9"] and "FP32 GEMM" in eb.target["turing_dropped"]
    with pytest.raises(EngineError, match="Turing"):  # Turing alone: nothing to fall back to
        build_engine(
            path, tmp_path / "b.engine", profile, Builder.TENSORRT_RTX, rtx_targets=(RtxTarget.SM75,)
        )
    assert not (tmp_path / "b.engine").exists()
