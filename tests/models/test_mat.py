"""MAT generator: key manifest and parity with the original (fenglinglwb/MAT), explicit randomness,
checkpoint filtering, ONNX export (ONNX Runtime CPU), fp16 safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trt_inpaint.errors import CheckpointError
from trt_inpaint.export import spec
from trt_inpaint.models.mat import (
    PARITY_RGB_GAIN,
    MATGenerator,
    checkpoint_filter_fn,
    mat_places,
    mat_tiny,
    random_init_,
)
from trt_inpaint.models.mat_transformer import Conv2dLayerPartial, WindowAttention

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIZE = 512  # the official resolution (parity test)
SMALL = 128  # tiny-config tests: same code paths, one up/down block per stage fewer than 512


def parity_init_(model: torch.nn.Module) -> torch.nn.Module:
    """The weights of tests/fixtures/mat_parity.json ("weights"): ``mat.random_init_`` at seed 0 with the
    fixtures' ToRGB gain."""
    return random_init_(model, 0, rgb_gain=PARITY_RGB_GAIN)


def feeds(model: MATGenerator, batch: int = 1, seed: int = 0, hole_box=(40, 88)) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sh = model.noise_shapes()
    size = model.img_resolution
    masks = torch.ones(batch, 1, size, size)
    masks[..., hole_box[0] : hole_box[1], hole_box[0] : hole_box[1]] = 0
    return {
        "images": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
        "masks": masks,
        "z": torch.randn(batch, *sh["z"], generator=g),
        "token_keep": (torch.rand(batch, *sh["token_keep"], generator=g) < 0.5).float(),
        "feature_keep": (torch.rand(batch, *sh["feature_keep"], generator=g) < 0.5).float(),
    }


@pytest.fixture(scope="module")
def tiny() -> MATGenerator:
    torch.manual_seed(0)
    return parity_init_(mat_tiny(img_resolution=SMALL)).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def places() -> MATGenerator:
    return mat_places().eval().requires_grad_(False)


def test_keys_and_shapes_match_original(places):
    man = json.loads((FIXTURES / "mat_generator_manifest.json").read_text())
    ours = [[k, list(v.shape)] for k, v in places.state_dict().items()]
    assert ours == man["keys"]
    n = sum(p.numel() for p in places.parameters())
    assert n == man["num_parameters"]
    assert abs(n - 61.6e6) / 61.6e6 < 0.01


def test_noise_shapes_match_spec(places):
    sh = places.noise_shapes()
    for t in (spec.MAT_Z, spec.MAT_TOKEN_KEEP, spec.MAT_FEATURE_KEEP):
        assert sh[t.name] == tuple(t.shape[1:]), t.name


def test_parity_with_original_full_size(places):
    """Full 512 Generator, seeded weights, real photo + mask, maps and z fixed: max |diff| <= 1e-3."""
    meta = json.loads((FIXTURES / "mat_parity.json").read_text())
    assert len(meta["commit"]) == 40
    d = np.load(FIXTURES / "mat_parity.npz")
    hole = np.unpackbits(d["hole"])[: SIZE * SIZE].reshape(SIZE, SIZE).astype(bool)
    model = parity_init_(places)
    images = torch.from_numpy(d["image"]).permute(2, 0, 1)[None].float() / 127.5 - 1
    masks = torch.from_numpy((~hole).astype(np.float32))[None, None]
    tk = np.unpackbits(d["token_keep"])[: 256 * 180].reshape(1, 256, 180).astype(np.float32)
    fk = np.unpackbits(d["feature_keep"])[: 512 * 256].reshape(1, 512, 16, 16).astype(np.float32)
    with torch.no_grad():
        z = torch.from_numpy(d["z"])
        out = model(images, masks, z, torch.from_numpy(tk), torch.from_numpy(fk))[0].numpy()
    assert np.isfinite(out).all()
    assert float(d["out_hole"].std()) > 0.05  # the reference is not degenerate
    assert np.abs(out[:, hole] - d["out_hole"]).max() <= 1e-3
    assert np.array_equal(out[:, ~hole], images[0].numpy()[:, ~hole])


def test_forward_deterministic_and_uses_every_input(tiny, monkeypatch):
    f = feeds(tiny)

    def forbidden(*a, **k):
        raise AssertionError("random op called inside forward")

    for name in ("randn", "rand", "randn_like", "rand_like", "bernoulli", "normal"):
        monkeypatch.setattr(torch, name, forbidden)
    monkeypatch.setattr(F, "dropout", forbidden)
    with torch.no_grad():
        a = tiny(**f)
        b = tiny(**f)
        assert a.shape == (1, 3, SMALL, SMALL)
        assert torch.equal(a, b)
        known = f["masks"].bool().expand_as(a)
        assert torch.equal(a[known], f["images"][known])
        for name in ("z", "token_keep", "feature_keep"):
            g = dict(f)
            g[name] = 1 - f[name] if name != "z" else -f[name]
            c = tiny(**g)
            assert (c - a).abs().max() > 1e-4, f"{name} has no effect"
            assert torch.equal(c[known], a[known])


def test_truncation_moves_towards_w_avg(tiny):
    f = feeds(tiny)
    with torch.no_grad():
        ws1 = tiny.mapping(f["z"])
        ws0 = tiny.mapping(f["z"], truncation_psi=0.0)
        assert torch.allclose(ws0, tiny.mapping.w_avg.expand_as(ws0))
        assert not torch.allclose(ws1, ws0)
        assert not torch.equal(tiny(**f, truncation_psi=0.5), tiny(**f))


def test_checkpoint_filter_fills_and_drops_noise_keys(tiny):
    sd = {k: v.clone() for k, v in tiny.state_dict().items()}
    no_noise = {k: v for k, v in sd.items() if not k.endswith((".noise_const", ".noise_strength"))}
    assert len(no_noise) < len(sd)
    fresh = mat_tiny(img_resolution=SMALL)
    fresh.load_state_dict(checkpoint_filter_fn(no_noise, fresh), strict=True)
    key = "synthesis.dec.Dec_16x16.conv0.weight"
    assert torch.equal(fresh.state_dict()[key], sd[key])
    # a model without noise keys takes a full (official-like) dict
    quiet = mat_tiny(img_resolution=SMALL, use_noise=False)
    quiet.load_state_dict(checkpoint_filter_fn(sd, quiet), strict=True)
    with pytest.raises(CheckpointError, match="unexpected"):
        checkpoint_filter_fn({**sd, "synthesis.bogus.weight": torch.zeros(1)}, fresh)
    with pytest.raises(CheckpointError, match="missing"):
        checkpoint_filter_fn({k: v for k, v in sd.items() if k != "mapping.fc0.weight"}, fresh)
    bad = dict(sd)
    bad["mapping.fc0.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="shape"):
        checkpoint_filter_fn(bad, fresh)


def test_onnx_export_dynamic_batch_matches_torch(tiny, tmp_path):
    import onnx
    import onnxruntime as ort

    names = ["images", "masks", "z", "token_keep", "feature_keep"]
    f1 = feeds(tiny, batch=1)
    path = tmp_path / "mat_tiny.onnx"
    torch.onnx.export(
        tiny,
        tuple(f1[n] for n in names),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=names,
        output_names=["output"],
        dynamic_axes={n: {0: "N"} for n in [*names, "output"]},
    )
    graph = onnx.load(str(path)).graph
    assert {n.domain for n in graph.node} <= {"", "ai.onnx"}
    random_ops = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Dropout"}
    assert not {n.op_type for n in graph.node} & random_ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f2 = feeds(tiny, batch=2, seed=1, hole_box=(20, 100))
    (got,) = sess.run(None, {n: f2[n].numpy() for n in names})
    with torch.no_grad():
        ref = tiny(**f2).numpy()
    assert got.shape == (2, 3, SMALL, SMALL)
    assert np.abs(got - ref).max() <= 1e-3


def test_partial_conv_fp16_has_no_nan():
    """A window with no known pixel: in fp16, 9 / (0 + 1e-8) overflows and inf * 0 = NaN unless fp32."""
    conv = parity_init_(Conv2dLayerPartial(4, 8, 3, down=2)).half()
    x = torch.randn(1, 4, 16, 16).half()
    mask = torch.ones(1, 1, 16, 16)
    mask[..., :8, :] = 0
    y, m = conv(x, mask.half())
    assert torch.isfinite(y).all() and (y[..., :3, :] == 0).all() and (y[..., 5:, :] != 0).any()
    assert set(m.unique().tolist()) == {0.0, 1.0}


def test_window_attention_fp16_zero_tokens_no_nan():
    """Zero tokens (holes): F.normalize's eps 1e-12 is 0 in fp16 (0/0 = NaN) unless computed in fp32."""
    attn = parity_init_(WindowAttention(12, 2)).half()
    x = torch.randn(2, 16, 12).half()
    x[:, :5] = 0
    mask_windows = torch.ones(2, 16, 1)
    mask_windows[0, :5] = 0
    y, mw = attn(x, mask_windows)
    assert torch.isfinite(y).all()
    assert torch.equal(mw, torch.ones(2, 16, 1))


def test_full_width_model_fp16_is_finite(monkeypatch):
    """Full-width MAT (every layer type and channel count of mat_places) in half precision on CPU.
    torch's CPU fp16 convolutions are ~100x slower than fp32, so convolutions run as a GPU does them:
    fp16 in and out, fp32 accumulation (inputs up-cast, result rounded to fp16, overflow -> inf); all
    other ops run in fp16. At 128x128 (two up/down blocks fewer than 512) to bound CPU time.

    What this leaves unchecked: fp16 accumulation inside the convolutions (a GPU kernel may accumulate in
    fp16; here every conv sums in fp32, so an overflow or loss of precision within a conv's sums is not
    seen), the two up/down blocks of 512x512, and closeness to the fp32 output (only finiteness and a
    spread hole: the fp16 ONNX and engines are compared with fp32 in tests/export)."""
    conv2d, conv_t = F.conv2d, F.conv_transpose2d

    def as_gpu(op):
        def run(x, w, *a, **k):
            if x.dtype != torch.float16:
                return op(x, w, *a, **k)
            return op(x.float(), w.float(), *a, **k).half()

        return run

    monkeypatch.setattr(F, "conv2d", as_gpu(conv2d))
    monkeypatch.setattr(F, "conv_transpose2d", as_gpu(conv_t))
    model = parity_init_(mat_places(img_resolution=SMALL)).eval().requires_grad_(False).half()
    g = torch.Generator().manual_seed(3)
    sh = model.noise_shapes()
    masks = torch.ones(1, 1, SMALL, SMALL)
    masks[..., 30:100, 20:90] = 0
    with torch.no_grad():
        out = model(
            (torch.rand(1, 3, SMALL, SMALL, generator=g) * 2 - 1).half(),
            masks.half(),
            torch.randn(1, *sh["z"], generator=g).half(),
            (torch.rand(1, *sh["token_keep"], generator=g) < 0.5).half(),
            (torch.rand(1, *sh["feature_keep"], generator=g) < 0.5).half(),
        )
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    hole = (masks == 0).expand_as(out)  # the known pixels are the random input, copied: not evidence
    assert out.float()[hole].std() > 0.05
