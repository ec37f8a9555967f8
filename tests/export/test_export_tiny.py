"""Export of every stage from the reduced (tiny) models: ONNX checks, ORT vs PyTorch, manifest, reuse."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from tests.export.photo_feeds import photo_feeds
from trt_inpaint.export import spec as S
from trt_inpaint.export.build import Exporter, ExportOptions
from trt_inpaint.export.calibration import CalibrationOptions
from trt_inpaint.export.engine import Builder
from trt_inpaint.export.fold import fold_constants
from trt_inpaint.export.fp16_check import compare, hole_masks
from trt_inpaint.export.onnx import check_onnx
from trt_inpaint.models import stages as ST

CAL = CalibrationOptions(size=64, max_images=2)
SIZES = [(256, 256), (512, 512), (200, 264), (768, 1024)]


def _quiet():
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return so


def _opts(out, **kw) -> ExportOptions:
    kw.setdefault("calibration", CAL)
    kw.setdefault("builder", Builder.NONE)
    return ExportOptions(out_dir=out, tiny=True, **kw)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    manifest, reports = Exporter(_opts(out)).run()
    return out, manifest, reports


def _feeds(stage: S.Stage, h: int, w: int) -> dict[str, np.ndarray]:
    """Stage inputs from the shipped photos (combiner: two photos); MAT noise at the spec's shapes (the
    stage boundary; the reduced MAT's wrapper crops it)."""
    return photo_feeds(stage, h, w, first=2, noise_seed=3)


def _torch_inputs(stage: S.Stage, h: int, w: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(x) for x in _feeds(stage, h, w).values())


def _fidelity(ref: np.ndarray, got: np.ndarray, mask: np.ndarray, what) -> None:
    """fp16 against the reference over the hole: PSNR >= 40 dB, and the reference spread over the hole
    (> 0.05), so that the comparison can see a wrong hole at all."""
    c = compare([ref], [got], [mask])
    assert c.reference_std > 0.05, (what, c)
    assert c.psnr_db >= 40 and c.nonfinite == 0, (what, c)


def test_every_stage_exported_and_checked(tiny):
    out, manifest, reports = tiny
    assert [r.stage for r in reports] == list(S.Stage)
    for stage in S.Stage:
        model = check_onnx(out / S.onnx_filename(stage, S.Precision.FP32), stage)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        # no DFT (TensorRT-RTX and ORT-CUDA lack it) and no data-dependent control flow (squeezes on traced
        # dims export as `If`, which splits what TensorRT fuses)
        assert not {n.op_type for n in model.graph.node} & {"DFT", "STFT", "If", "Loop"}
        # weights are stored once: nothing computed from weights alone is left to fold
        assert fold_constants(onnx.load(str(out / S.onnx_filename(stage, S.Precision.FP32)))) == 0
        image = next(i for i in model.graph.input if i.name == S.spec(stage).input_names[0])
        dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
        assert dims == (["N", 3, 512, 512] if stage is S.Stage.MAT else ["N", 3, "H", "W"])
        check_onnx(out / S.onnx_filename(stage, S.Precision.FP16), stage)
        rec = manifest.stages[stage.value]
        assert rec.random_init and rec.source["tiny"]
        fp16 = rec.artefacts["onnx_fp16"].info
        assert fp16["verification"]["passed"] and fp16["verification"]["nonfinite"] == 0
        assert isinstance(fp16["fp32_islands"], list)
    data = json.loads((out / S.MANIFEST_NAME).read_text())
    assert data["random_init"] is True and "RANDOM" in data["warning"]
    assert data["stages"]["lama"]["inputs"][0]["name"] == "image"


@pytest.mark.parametrize("stage", list(S.Stage))
def test_ort_fp32_and_fp16_match_torch(tiny, stage):
    import onnxruntime as ort

    out, _, _ = tiny
    model = ST.random_stage(stage, seed=0, tiny=True)  # torch.fft reference (the ONNX has the matmul DFT)
    sessions = {
        p: ort.InferenceSession(
            str(out / S.onnx_filename(stage, p)), _quiet(), providers=["CPUExecutionProvider"]
        )
        for p in S.FILE_PRECISIONS
    }
    sizes = [(512, 512)] if stage is S.Stage.MAT else SIZES
    for h, w in sizes:
        ins = _torch_inputs(stage, h, w)
        with torch.no_grad():
            ref = model(*ins).numpy()
        feeds = {n: x.numpy() for n, x in zip(S.spec(stage).input_names, ins, strict=True)}
        got32 = sessions[S.Precision.FP32].run(None, feeds)[0]
        assert np.abs(got32 - ref).max() <= 1e-3, (stage, h, w)
        got16 = sessions[S.Precision.FP16].run(None, feeds)[0]
        assert np.isfinite(got16).all()
        _fidelity(ref, got16, hole_masks([feeds])[0], (stage, h, w))


def test_end_to_end_ort_matches_torch(tiny):
    """The ensemble at 512 (reduced models): ONNX Runtime fp32 chain vs PyTorch <= 1e-3; fp16 chain >= 40 dB
    over the hole, finite. (The full-size models are checked stage by stage in test_export_full.py.)"""
    import onnxruntime as ort

    out, _, _ = tiny
    feeds = _feeds(S.Stage.MAT, 512, 512)
    with torch.no_grad():
        ref = ST.random_ensemble(seed=0, tiny=True)(*(torch.from_numpy(x) for x in feeds.values())).numpy()
    final = S.PIPELINES[S.Pipeline.ENSEMBLE][-1].stage.value
    for precision in S.FILE_PRECISIONS:
        sources = {"image": feeds["image"], "mask": feeds["mask"]}
        for call in S.PIPELINES[S.Pipeline.ENSEMBLE]:
            names = S.spec(call.stage).input_names
            f = {n: sources[call.feeds[n]] if n in call.feeds else feeds[n] for n in names}
            path = str(out / S.onnx_filename(call.stage, precision))
            sess = ort.InferenceSession(path, _quiet(), providers=["CPUExecutionProvider"])
            sources[call.stage.value] = sess.run(None, f)[0]
        got = sources[final]
        assert np.isfinite(got).all()
        if precision is S.Precision.FP32:
            assert np.abs(got - ref).max() <= 1e-3
        else:
            _fidelity(ref, got, feeds["mask"], "ensemble")


def test_rerun_reuses_and_rebuilds_stale(tiny, tmp_path):
    out, _, _ = tiny
    _, reports = Exporter(_opts(out)).run()
    assert {r.status for r in reports} == {"reused"}
    # another calibration set: the fp16 ONNX is stale, the fp32 ONNX is not
    _, reports = Exporter(
        _opts(out, stages=(S.Stage.LAMA_DENOISER,), calibration=CalibrationOptions(size=64, max_images=1))
    ).run()
    assert reports[0].status == "built (onnx_fp16)"
    # a damaged file is rebuilt
    path = out / S.onnx_filename(S.Stage.FINAL_DENOISER, S.Precision.FP32)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    _, reports = Exporter(_opts(out, stages=(S.Stage.FINAL_DENOISER,))).run()
    assert reports[0].status.startswith("built (onnx_fp32")
    onnx.checker.check_model(str(path))


def _current_copy(tiny, tmp_path):
    """A copy of the shared tiny export, brought up to date (other tests change the shared folder)."""
    import shutil

    out = tmp_path / "engines"
    shutil.copytree(tiny[0], out)
    Exporter(_opts(out)).run()
    return out


def test_new_upstream_weights_make_downstream_fp16_stale(tiny, tmp_path):
    """A stage's fp16 ONNX is measured on its upstream stages' fp32 outputs: new LaMa weights rebuild the fp16
    of every stage downstream of LaMa (their own fp32 stays), and nothing of MAT."""
    out = _current_copy(tiny, tmp_path)
    _, reports = Exporter(_opts(out, stages=(S.Stage.LAMA,), seed=1)).run()
    assert reports[0].status == "built (onnx_fp32, onnx_fp16)"
    others = tuple(s for s in S.Stage if s is not S.Stage.LAMA)
    _, reports = Exporter(_opts(out, stages=others)).run()
    status = {r.stage: r.status for r in reports}
    assert status == {
        S.Stage.LAMA_DENOISER: "built (onnx_fp16)",
        S.Stage.MAT: "reused",
        S.Stage.COMBINER: "built (onnx_fp16)",
        S.Stage.FINAL_DENOISER: "built (onnx_fp16)",
    }
    _, reports = Exporter(_opts(out, stages=others)).run()
    assert {r.status for r in reports} == {"reused"}


def test_engine_built_then_reused_then_rebuilt_for_new_profile(tiny):
    out, _, _ = tiny
    stage = (S.Stage.FINAL_DENOISER,)
    small = dict(stages=stage, builder=Builder.TENSORRT_RTX, min_size=64, max_size=256, max_batch=1)
    _, reports = Exporter(_opts(out, **small)).run()
    assert reports[0].status == "built (engine)"
    engine = reports[0].record.artefacts["engine"]
    assert engine.info["builder"] == "tensorrt-rtx" and (out / engine.file).stat().st_size == engine.bytes
    assert reports[0].record.profile["image"] == [[1, 3, 64, 64], [1, 3, 512, 512], [1, 3, 512, 512]]
    _, reports = Exporter(_opts(out, **small)).run()
    assert reports[0].status == "reused"
    _, reports = Exporter(_opts(out, **{**small, "max_size": 768})).run()
    assert reports[0].status == "built (engine)"
    assert reports[0].record.profile["image"][2] == [1, 3, 768, 768]


def test_check_fails_a_constant_in_the_hole(tiny, tmp_path):
    """``export-engines --check`` (CPU rows) on the tiny export: every fp16 stage and the chain pass (>= 40 dB
    over the hole against a spread reference); with the lama_denoiser's fp16 ONNX replaced by a graph that
    writes 0.5 into the hole, its row drops far below (checked on that stage alone, to save time)."""
    import shutil

    from tests.standins import fill_model
    from trt_inpaint.export.check import run_check

    out, _, _ = tiny
    rows, _ = run_check(out, CAL, use_gpu=False)
    good = {(r.stage, r.compared): r.comparison for r in rows}
    assert len(good) == 2 * len(S.Stage) + 1 and all(c is not None for c in good.values())
    for key, c in good.items():
        assert c.reference_std > 0.05 and c.psnr_db >= 40 and c.nonfinite == 0, (key, c)

    stage = S.Stage.LAMA_DENOISER
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in S.FILE_PRECISIONS:
        shutil.copy(out / S.onnx_filename(stage, p), bad)
    shutil.copy(out / S.onnx_filename(S.Stage.LAMA, S.Precision.FP32), bad)  # its upstream: the same feeds
    data = json.loads((out / S.MANIFEST_NAME).read_text())
    data["stages"] = {stage.value: data["stages"][stage.value]}
    (bad / S.MANIFEST_NAME).write_text(json.dumps(data))
    onnx.save(fill_model(stage, 0.5, 0.0), str(bad / S.onnx_filename(stage, S.Precision.FP16)))
    rows, _ = run_check(bad, CAL, use_gpu=False)
    got = {(r.stage, r.compared): r.comparison for r in rows}
    assert got[(stage.value, "fp16 ONNX (ORT CPU) vs fp32 ONNX")].psnr_db < 25
    assert got[(stage.value, "fp16-sim vs fp32 ONNX")] == good[(stage.value, "fp16-sim vs fp32 ONNX")]


def test_stages_asked_downstream_first_run_upstream_first(tiny, tmp_path):
    """``--stages combiner,lama``: LaMa is exported before the combiner, so the combiner's fp16 is measured on
    (and keyed by) the new LaMa, and a second run has nothing left to do."""
    out = _current_copy(tiny, tmp_path)
    _, reports = Exporter(_opts(out, stages=(S.Stage.COMBINER, S.Stage.LAMA), seed=1)).run()
    assert [r.stage for r in reports] == [S.Stage.LAMA, S.Stage.COMBINER]
    _, reports = Exporter(_opts(out, stages=(S.Stage.COMBINER, S.Stage.LAMA), seed=1)).run()
    assert {r.status for r in reports} == {"reused"}
