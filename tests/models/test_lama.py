"""big-LaMa generator: parity with the original advimman/lama code (stored fixture), TORCH vs the matrix
DFTs (MATMUL, FACTORED), state-dict layout, checkpoint filtering and a dynamic-size ONNX export of each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trt_inpaint.errors import InputError
from trt_inpaint.models.init import deterministic_init_
from trt_inpaint.models.lama import (
    FFTImpl,
    LamaGenerator,
    checkpoint_filter_fn,
    lama_big,
    lama_tiny,
    random_init_,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PARITY = FIXTURES / "lama_big_parity.npz"
KEYS = FIXTURES / "lama_big_keys.json"
BIG_PARAMS = 51.0e6


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _big_on_meta() -> LamaGenerator:
    """Full big-LaMa without allocating or initialising weights (shapes and counts only)."""
    with torch.device("meta"):
        return lama_big()


@pytest.fixture(scope="module")
def parity():
    """Input, original output and metadata of the stored parity fixture."""
    data = np.load(PARITY)
    meta = json.loads(str(data["meta"]))
    image = torch.from_numpy(data["image"]).permute(2, 0, 1)[None].float() / 255.0
    mask = torch.from_numpy(data["mask"])[None, None].float()
    x = torch.cat([image * (1 - mask), mask], dim=1)
    expected = torch.from_numpy(data["output_u16"].astype(np.float32) / 65535.0)[None]
    return x, expected, meta


@pytest.fixture(scope="module")
def big(parity):
    """Full big-LaMa with the fixture's deterministic weights (same rule, seed and gain as the original)."""
    _, _, meta = parity
    model = _big_on_meta().to_empty(device="cpu").eval()  # skips torch's default init: all is set below
    for value in model.state_dict().values():
        if not value.is_floating_point():  # num_batches_tracked: unused in eval, set like a fresh model
            value.zero_()
    deterministic_init_(model, seed=meta["seed"], gain=meta["gain"])
    return model


@pytest.fixture(scope="module")
def big_torch_out(big, parity):
    x, _, _ = parity
    with torch.no_grad():
        return big.set_fft(FFTImpl.TORCH)(x)


def test_fixture_records_the_original_commit(parity):
    _, expected, meta = parity
    assert meta["source"] == "advimman/lama"
    assert len(meta["commit"]) == 40
    # a saturated sigmoid would make the parity check blind: the stored output is spread out
    assert 0.05 < expected.std().item() and expected.min() > 0.0 and expected.max() < 1.0


def test_state_dict_matches_the_original_manifest():
    manifest = json.loads(KEYS.read_text())["keys"]
    ours = {k: list(v.shape) for k, v in _big_on_meta().state_dict().items()}
    assert sorted(ours) == sorted(manifest)
    assert ours == manifest
    assert "model.5.conv1.ffc.convg2g.fu.conv_layer.weight" in ours
    assert "model.4.bn_g.num_batches_tracked" in ours


def test_parameter_count_of_big_lama():
    n = _params(_big_on_meta())
    assert abs(n - BIG_PARAMS) <= 0.01 * BIG_PARAMS, n


def test_parity_with_the_original(big_torch_out, parity):
    _, expected, _ = parity
    assert big_torch_out.shape == expected.shape == (1, 3, 256, 256)
    assert (big_torch_out - expected).abs().max().item() <= 1e-4


MATRIX_DFTS = [FFTImpl.MATMUL, FFTImpl.FACTORED]


@pytest.mark.parametrize("impl", MATRIX_DFTS)
def test_matrix_dft_matches_torch_fft_at_256(big, big_torch_out, parity, impl):
    x, expected, _ = parity
    with torch.no_grad():
        y = big.set_fft(impl)(x)
    big.set_fft(FFTImpl.TORCH)
    assert (y - big_torch_out).abs().max().item() <= 1e-4
    assert (y - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize("impl", MATRIX_DFTS)
def test_matrix_dft_matches_torch_fft_at_odd_bottleneck_width(big, impl):
    # 200 x 264 -> 25 x 33 at 1/8 scale: odd height and width in every Fourier unit
    x = torch.rand(1, 4, 200, 264, generator=torch.Generator().manual_seed(1))
    x[:, 3:] = (x[:, 3:] > 0.7).float()
    x[:, :3] *= 1 - x[:, 3:]
    with torch.no_grad():
        ref = big.set_fft(FFTImpl.TORCH)(x)
        y = big.set_fft(impl)(x)
    big.set_fft(FFTImpl.TORCH)
    assert y.shape == (1, 3, 200, 264)
    assert ref.std().item() > 0.05  # not saturated, so the comparison sees differences
    assert (y - ref).abs().max().item() <= 1e-4


def test_set_fft_adds_no_state():
    model = lama_tiny().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.set_fft(FFTImpl.MATMUL)(torch.rand(1, 4, 40, 48))
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert {m.fft for m in model.modules() if hasattr(m, "fft")} == {FFTImpl.MATMUL}


def test_tiny_output_shape_range_and_bad_sizes():
    model = deterministic_init_(lama_tiny(), seed=0).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 4, 40, 56))
    assert y.shape == (2, 3, 40, 56)
    assert 0.0 <= y.min().item() and y.max().item() <= 1.0
    with pytest.raises(InputError, match="multiples of 8"):
        model(torch.rand(1, 4, 36, 56))
    with pytest.raises(InputError, match="got \\(1, 3, 40, 56\\)"):
        model(torch.rand(1, 3, 40, 56))


def test_checkpoint_filter_fn_keeps_only_the_generator():
    reference = deterministic_init_(lama_tiny(), seed=5)
    gen = reference.state_dict()
    lightning = {f"generator.{k}": v for k, v in gen.items()}
    lightning["discriminator.model0.0.ffc.convl2l.weight"] = torch.zeros(3)
    lightning["evaluator.scores.ssim.weight"] = torch.zeros(2)
    lightning["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(1)
    snapshot = dict(lightning)

    filtered = checkpoint_filter_fn(lightning, reference)
    assert lightning == snapshot  # pure
    assert set(filtered) == set(gen)
    model = lama_tiny()
    model.load_state_dict(filtered, strict=True)
    assert all(torch.equal(model.state_dict()[k], gen[k]) for k in gen)

    plain = checkpoint_filter_fn(gen, model)
    assert set(plain) == set(gen) and plain is not gen


@pytest.mark.parametrize("impl", MATRIX_DFTS)
def test_onnx_export_of_the_matrix_dft_serves_any_size(tmp_path, impl):
    import onnx
    import onnxruntime as ort

    model = random_init_(lama_tiny(fft=impl), seed=0).eval()
    assert isinstance(model, LamaGenerator)
    path = tmp_path / "lama_tiny.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(
        model, (torch.rand(1, 4, 64, 64),), str(path), dynamo=False, opset_version=17,
        input_names=["x"], output_names=["y"], dynamic_axes={"x": axes, "y": axes},
    )  # fmt: skip
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert not ops & {"DFT", "STFT", "If", "Loop"} and "MatMul" in ops
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["n", 4, "h", "w"]

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(2)
    for shape in [(1, 4, 64, 64), (2, 4, 72, 104), (1, 4, 136, 200)]:  # 1/8: 9 x 13, 17 x 25 (17 prime)
        x = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            ref = model.set_fft(FFTImpl.TORCH)(x).numpy()  # against torch.fft, same weights
        model.set_fft(impl)
        (y,) = session.run(None, {"x": x.numpy()})
        assert y.shape == ref.shape
        assert ref.std() > 0.05  # spread, so the comparison sees differences
        assert np.abs(y - ref).max() <= 1e-4
