"""Stage wrappers, run_pipeline and the Ensemble: spec order, conventions, known pixels kept exactly, ONNX."""

from __future__ import annotations

import inspect
import io
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from trt_inpaint.errors import InputError
from trt_inpaint.export.fp16_check import compare
from trt_inpaint.export.spec import PIPELINES, Pipeline, Stage, pipeline_stages, spec
from trt_inpaint.models import stages as st

LIGHT = (Stage.LAMA_DENOISER, Stage.COMBINER, Stage.FINAL_DENOISER)


def _size(stage: Stage) -> tuple[int, int]:
    return (512, 512) if spec(stage).fixed_size else (64, 96)


def _assert_known_kept(stage: Stage, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
    names = spec(stage).input_names
    feeds = dict(zip(names, inputs, strict=True))
    base = feeds["lama_image"] if stage is Stage.COMBINER else feeds["image"]
    known = (feeds["mask"] == 0).expand_as(base)
    assert out.shape == base.shape
    assert known.any() and (~known).any()
    assert torch.equal(out[known], base[known])
    assert not torch.equal(out[~known], base[~known])  # the holes were filled with something else


# ---- wrappers ------------------------------------------------------------------------------------------


def test_every_stage_has_a_wrapper_taking_spec_inputs_in_order() -> None:
    assert set(st.STAGE_WRAPPERS) == set(Stage)
    for stage, cls in st.STAGE_WRAPPERS.items():
        params = list(inspect.signature(cls.forward).parameters)[1:]
        assert tuple(params) == spec(stage).input_names, stage
        assert cls.__name__ == spec(stage).torch.wrapper


def test_composite_formula() -> None:
    image, pred = torch.full((1, 3, 2, 2), 0.25), torch.full((1, 3, 2, 2), 0.75)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    out = st.composite(pred, image, mask)
    assert torch.equal(out[0, :, 0, 0], pred[0, :, 0, 0]) and torch.equal(out[0, :, 0, 1], image[0, :, 0, 1])


class _RecordingMat(nn.Module):
    """Stand-in with MAT's signature and convention ([-1, 1], 1 = known); records what it is given."""

    def forward(self, images, masks, z, token_keep, feature_keep):
        self.seen = (images, masks, z, token_keep, feature_keep)
        return torch.full_like(images, 3.0) * (1 - masks) - 5.0 * masks  # out of range on purpose


class _RecordingLama(nn.Module):
    def forward(self, x):
        self.seen = x
        return torch.sigmoid(x[:, :3] + x[:, 3:])


def test_mat_stage_converts_to_mats_convention_and_back() -> None:
    gen = _RecordingMat()
    inputs = st.example_inputs(Stage.MAT, batch=1, height=512, width=512, seed=1)
    out = st.MatStage(gen)(*inputs)
    image, mask, z, token_keep, feature_keep = inputs
    images, masks, *noise = gen.seen
    assert torch.equal(images, image * 2 - 1) and torch.equal(masks, 1 - mask)
    assert all(a is b for a, b in zip(noise, (z, token_keep, feature_keep), strict=True))
    hole = mask.expand_as(image) == 1
    assert torch.equal(out[hole], torch.ones_like(out[hole]))  # (3 + 1) / 2 clamped to 1
    assert torch.equal(out[~hole], image[~hole])


def test_lama_stage_feeds_masked_image_and_mask() -> None:
    gen = _RecordingLama()
    image, mask = st.example_inputs(Stage.LAMA, height=32, width=32)
    st.LamaStage(gen)(image, mask)
    assert torch.equal(gen.seen, torch.cat([image * (1 - mask), mask], dim=1))


@pytest.mark.parametrize("stage", list(Stage), ids=str)
def test_every_stage_keeps_known_pixels_exactly(stage: Stage) -> None:
    model = st.random_stage(stage, seed=3, tiny=True)
    inputs = st.example_inputs(stage, 2, *_size(stage), seed=4)
    with torch.no_grad():
        out = model(*inputs)
    _assert_known_kept(stage, inputs, out)
    assert out.min() >= 0 and out.max() <= 1


def test_build_stage_wraps_the_model() -> None:
    d = st.random_stage_model(Stage.FINAL_DENOISER, tiny=True)
    s = st.build_stage("final_denoiser", d)
    assert isinstance(s, st.DenoiserStage) and s.denoiser is d


def test_random_stage_model_follows_the_model_files_init_rule() -> None:
    from trt_inpaint.models.combiner import combiner_tiny, random_init_

    ours = st.random_stage_model(Stage.COMBINER, seed=11, tiny=True).state_dict()
    ref = random_init_(combiner_tiny(), seed=11).state_dict()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    mat = st.random_stage_model(Stage.MAT, seed=11, tiny=True)  # 0-d buffers (noise_strength) included
    assert any(v.dim() == 0 for v in mat.state_dict().values())


def test_random_stage_model_is_deterministic_by_seed() -> None:
    a = st.random_stage_model(Stage.COMBINER, seed=7, tiny=True).state_dict()
    b = st.random_stage_model(Stage.COMBINER, seed=7, tiny=True).state_dict()
    c = st.random_stage_model(Stage.COMBINER, seed=8, tiny=True).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ---- the pipeline --------------------------------------------------------------------------------------


class _Tag(nn.Module):
    """Adds a constant to its first input and records every input it got."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, *args):
        self.seen = args
        return args[0] + self.value


def test_run_pipeline_resolves_feeds_by_source_name() -> None:
    stages = {
        s: _Tag(v) for s, v in zip(pipeline_stages(Pipeline.ENSEMBLE), (1, 10, 100, 1000, 10000), strict=True)
    }
    inputs = st.example_inputs(Stage.MAT, seed=2)
    image, mask, z, token_keep, feature_keep = inputs
    noise = {"z": z, "token_keep": token_keep, "feature_keep": feature_keep}
    res = st.run_pipeline(stages, Pipeline.ENSEMBLE, image, mask, noise)
    assert set(res) == {"image", "mask", *(s.value for s in Stage)}
    assert st.pipeline_output(Pipeline.ENSEMBLE) == "final_denoiser"
    assert torch.equal(
        res["final_denoiser"], image + 1 + 10 + 1000 + 10000
    )  # lama, its denoiser, combiner, final
    assert stages[Stage.COMBINER].seen[0] is res["lama_denoiser"]
    assert stages[Stage.COMBINER].seen[1] is res["mat"] and stages[Stage.COMBINER].seen[2] is mask
    assert stages[Stage.MAT].seen[2:] == (z, token_keep, feature_keep)
    # the single-model pipelines run alone, without noise where none is needed
    only = st.run_pipeline({"lama": _Tag(1)}, Pipeline.LAMA, image, mask)  # keys by name work too
    assert torch.equal(only["lama"], image + 1)


def test_run_pipeline_errors() -> None:
    image, mask = st.example_inputs(Stage.LAMA, height=256, width=256)
    stages = {s: _Tag(0) for s in Stage}
    with pytest.raises(InputError, match="512x512"):
        st.run_pipeline(stages, Pipeline.ENSEMBLE, image, mask, {})
    image, mask = st.example_inputs(Stage.LAMA, height=512, width=512)
    with pytest.raises(ValueError, match="noise input 'z'"):
        st.run_pipeline(stages, Pipeline.ENSEMBLE, image, mask, {})
    with pytest.raises(ValueError, match="needs stage lama"):
        st.run_pipeline({}, Pipeline.LAMA, image, mask)
    odd = torch.zeros(1, 3, 60, 64)
    with pytest.raises(InputError, match="multiples of 8"):
        st.run_pipeline(stages, Pipeline.LAMA, odd, odd[:, :1])


def test_ensemble_tiny_keeps_known_pixels_exactly() -> None:
    ens = st.random_ensemble(seed=5, tiny=True)
    assert list(ens.stages) == [c.stage.value for c in PIPELINES[Pipeline.ENSEMBLE]]
    inputs = st.example_inputs(Stage.MAT, batch=1, seed=6)
    with torch.no_grad():
        out = ens(*inputs)
    _assert_known_kept(Stage.FINAL_DENOISER, inputs[:2], out)
    with pytest.raises(ValueError, match="needs stages"):
        st.Ensemble({Stage.LAMA: ens.stages["lama"]})


@pytest.mark.slow
def test_ensemble_full_size_keeps_known_pixels_exactly() -> None:
    t0 = time.perf_counter()
    ens = st.random_ensemble(seed=0, tiny=False)
    inputs = st.example_inputs(Stage.MAT, batch=1, seed=7)
    with torch.no_grad():
        out = ens(*inputs)
    _assert_known_kept(Stage.FINAL_DENOISER, inputs[:2], out)
    assert torch.isfinite(out).all()
    print(f"full-size random ensemble at 512x512: {time.perf_counter() - t0:.1f} s (build + forward)")


# ---- ONNX export of the light stages --------------------------------------------------------------------


def _export(model: nn.Module, stage: Stage, inputs: tuple[torch.Tensor, ...]) -> bytes:
    s = spec(stage)
    dyn = {
        t.name: {i: d for i, d in enumerate(t.shape) if isinstance(d, str)} for t in (*s.inputs, *s.outputs)
    }
    buf = io.BytesIO()
    torch.onnx.export(
        model, inputs, buf, dynamo=False, opset_version=17,
        input_names=list(s.input_names), output_names=list(s.output_names), dynamic_axes=dyn,
    )  # fmt: skip
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("stage", LIGHT, ids=str)
def test_light_stage_onnx_matches_onnxruntime(stage: Stage) -> None:
    model = st.random_stage(stage, seed=9, tiny=False)
    data = _export(model, stage, st.example_inputs(stage, 1, 64, 64, seed=1))
    onnx.checker.check_model(onnx.load_from_string(data))
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    inputs = st.example_inputs(stage, 2, 200, 264, seed=2)  # other batch and size than traced
    (got,) = sess.run(None, {n: x.numpy() for n, x in zip(spec(stage).input_names, inputs, strict=True)})
    with torch.no_grad():
        ref = model(*inputs).numpy()
    mask = inputs[spec(stage).input_names.index("mask")].numpy()
    assert compare([ref], [ref], [mask]).reference_std > 0.05  # a spread hole: the match means something
    np.testing.assert_allclose(got, ref, atol=1e-5)
    _assert_known_kept(stage, inputs, torch.from_numpy(got))
