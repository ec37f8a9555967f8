"""The Cooley-Tukey factored 2-D real DFT against torch.fft (norm "ortho"), eagerly and as one ONNX graph
for every size (ONNX Runtime at several sizes, TensorRT-RTX's parser and builder)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch

from trt_inpaint.models import dft_factored as D
from trt_inpaint.models.fft import FFTImpl, irfft2_ortho, irfft2_packed, rfft2_ortho, rfft2_packed

# (H, W) at LaMa's 1/8 scale: sides of 8..264 px inputs and their 1/8 (8 -> 1, 200 -> 25, 264 -> 33),
# powers of two and not, odd, prime (17, 19, 257: no factoring), squares (49, 64, 256), 1 and 2
SIZES = [(8, 8), (24, 40), (72, 200), (264, 33), (200, 264), (25, 33), (64, 65), (9, 13), (17, 19),
         (49, 50), (6, 10), (1, 1), (2, 3), (7, 1), (256, 256), (257, 24)]  # fmt: skip


def _rand(*shape: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_split_is_the_balanced_factorisation():
    for n in range(1, 600):
        p, q = D.split(n)
        assert p * q == n and 1 <= p <= q
        # no divisor lies strictly between p and sqrt(n)
        assert not [d for d in range(p + 1, math.isqrt(n) + 1) if n % d == 0], n
        # the graph form (tensor ops) agrees with the eager one
        pt, qt = D.split(torch.tensor(n))
        assert (int(pt), int(qt)) == (p, q)
    assert D.split(256) == (16, 16) and D.split(65) == (5, 13) and D.split(257) == (1, 257)


@pytest.mark.parametrize("hw", SIZES)
def test_rfft2_matches_torch(hw):
    x = _rand(2, 3, *hw)
    spec = rfft2_packed(x, FFTImpl.FACTORED)
    ref = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    assert spec.shape == (2, 3, 2, hw[0], hw[1] // 2 + 1)
    assert (spec[:, :, 0] - ref.real).abs().max().item() <= 1e-4
    assert (spec[:, :, 1] - ref.imag).abs().max().item() <= 1e-4


@pytest.mark.parametrize("hw", SIZES)
def test_irfft2_matches_torch_on_any_spectrum(hw):
    # a random spectrum is not Hermitian in the zero / Nyquist columns: both must drop the same parts
    h, w = hw
    spec = _rand(2, 3, 2, h, w // 2 + 1, seed=1)
    y = irfft2_packed(spec, hw, FFTImpl.FACTORED)
    ref = torch.fft.irfftn(torch.complex(spec[:, :, 0], spec[:, :, 1]), s=hw, dim=(-2, -1), norm="ortho")
    assert y.shape == ref.shape == (2, 3, h, w)
    assert (y - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("hw", [(24, 40), (25, 33), (257, 24), (256, 256)])
def test_float64_is_exact_to_rounding(hw):
    """At float64 every index or twiddle mistake shows far above rounding (1e-12)."""
    x = _rand(1, 2, *hw, seed=2, dtype=torch.float64)
    ref = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    re, im = rfft2_ortho(x, FFTImpl.FACTORED)
    assert re.dtype == torch.float64
    assert max((re - ref.real).abs().max().item(), (im - ref.imag).abs().max().item()) <= 1e-12
    assert (irfft2_ortho(re, im, hw, FFTImpl.FACTORED) - x).abs().max().item() <= 1e-12


def test_packed_and_unpacked_forms_agree_and_round_trip():
    x = _rand(3, 40, 72, seed=3)  # one leading dim only
    re, im = rfft2_ortho(x, FFTImpl.FACTORED)
    assert torch.equal(torch.stack((re, im), dim=-3), rfft2_packed(x, FFTImpl.FACTORED))
    assert (irfft2_ortho(re, im, (40, 72), FFTImpl.FACTORED) - x).abs().max().item() <= 1e-5


class _RoundTrip(torch.nn.Module):
    """rfft2 -> a pointwise change of the spectrum (so the inverse sees a non-trivial one) -> irfft2."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = rfft2_packed(x, FFTImpl.FACTORED)
        return spec, irfft2_packed(torch.relu(spec), (x.shape[-2], x.shape[-1]), FFTImpl.FACTORED)


@pytest.fixture(scope="module")
def round_trip_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("dft") / "dft.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(
        _RoundTrip(), (_rand(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
        input_names=["x"], output_names=["spec", "y"],
        dynamic_axes={"x": axes, "spec": {0: "n", 3: "h", 4: "wf"}, "y": axes},
    )  # fmt: skip
    return path


def test_one_graph_serves_every_size_in_onnxruntime(round_trip_onnx):
    import onnxruntime as ort

    ops = {n.op_type for n in onnx.load(str(round_trip_onnx)).graph.node}
    # no DFT (TensorRT-RTX cannot parse it) and no control flow: the structure is the same for all sizes
    assert not ops & {"DFT", "STFT", "If", "Loop"} and "MatMul" in ops
    session = ort.InferenceSession(str(round_trip_onnx), providers=["CPUExecutionProvider"])
    for i, hw in enumerate([(64, 64), (24, 40), (25, 33), (17, 19), (72, 200), (9, 1)]):
        x = _rand(2, 3, *hw, seed=10 + i)
        spec, y = session.run(None, {"x": x.numpy()})
        ref = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        assert np.abs(spec[:, :, 0] - ref.real.numpy()).max() <= 1e-4, hw
        assert np.abs(spec[:, :, 1] - ref.imag.numpy()).max() <= 1e-4, hw
        rectified = torch.relu(torch.stack((ref.real, ref.imag), dim=2))
        ref_y = torch.fft.irfftn(torch.complex(*rectified.unbind(2)), s=hw, dim=(-2, -1), norm="ortho")
        assert np.abs(y - ref_y.numpy()).max() <= 1e-4, hw


def test_tensorrt_rtx_parses_and_builds_it_for_a_range_of_sizes(round_trip_onnx, tmp_path):
    from trt_inpaint.export.engine import Builder, build_engine

    engine = tmp_path / "dft.engine"
    profile = {"x": ((1, 3, 8, 8), (1, 3, 64, 64), (1, 3, 264, 264))}
    build = build_engine(round_trip_onnx, engine, profile, Builder.TENSORRT_RTX)
    assert build.builder == "tensorrt-rtx" and engine.stat().st_size > 0
