"""HVI transform: values against colorsys, round trip, the trainable k, atan2, ONNX export vs ONNX Runtime."""

from __future__ import annotations

import colorsys
import io
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from trt_inpaint.models.hvi import HVITransform, atan2


def _hard_image(seed: int = 0, h: int = 24, w: int = 32) -> torch.Tensor:
    """Random image whose first rows hold grey, black, white, pure and 8-bit colours."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, h, w, generator=g)
    x[:, :, 0] = torch.rand(2, 1, w, generator=g)  # grey: R = G = B
    x[:, :, 1] = 0.0  # black
    x[:, :, 2] = 1.0  # white
    pure = torch.tensor(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [0.5, 0, 0], [0, 0, 0.3]]
    )
    x[:, :, 3, : len(pure)] = pure.T
    x[:, :, 4:8] = (
        torch.randint(0, 256, (2, 3, 4, w), generator=g) / 255.0
    )  # ties between channels are common
    x[:, :, 8:10] = torch.randint(0, 3, (2, 3, 2, w), generator=g) / 2.0
    return x


@pytest.mark.parametrize("k", [0.2, 0.05, 1.0])
def test_round_trip_within_1e4(k: float) -> None:
    t = HVITransform(k=k)
    x = _hard_image()
    with torch.no_grad():
        y = t.inverse(t(x))
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert (y - x).abs().max().item() <= 1e-4


def test_forward_matches_hsv_definition() -> None:
    t = HVITransform(k=0.2)
    x = _hard_image(seed=3)
    with torch.no_grad():
        hvi = t(x).permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    expected = []
    for r, g, b in pixels:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        ck = (math.sin(math.pi * v / 2) + 1e-8) ** 0.2
        expected.append((ck * s * math.cos(2 * math.pi * h), ck * s * math.sin(2 * math.pi * h), v))
    np.testing.assert_allclose(hvi, np.array(expected), atol=2e-6)


def test_grey_and_black_pixels_map_to_the_axis() -> None:
    t = HVITransform()
    x = _hard_image()
    with torch.no_grad():
        hvi = t(x)
    assert torch.equal(hvi[:, :2, 0:3], torch.zeros_like(hvi[:, :2, 0:3]))  # grey, black, white rows
    assert torch.equal(hvi[:, 2], x.max(1).values)


def test_density_k_is_a_trainable_parameter_with_gradient() -> None:
    t = HVITransform()
    assert list(t.state_dict()) == ["density_k"]
    assert isinstance(t.density_k, torch.nn.Parameter) and t.density_k.requires_grad
    assert t.density_k.item() == pytest.approx(0.2)
    x = _hard_image()
    t(x)[:, :2].square().sum().backward()
    assert t.density_k.grad is not None and torch.isfinite(t.density_k.grad).all()
    assert t.density_k.grad.abs().item() > 0
    t.zero_grad()
    hvi = torch.randn(1, 3, 8, 8) * 0.3
    hvi[:, 2] = torch.rand(1, 8, 8)
    t.inverse(hvi).sum().backward()  # the inverse uses k too
    assert t.density_k.grad.abs().item() > 0


def test_gradient_is_finite_on_grey_and_black_pixels() -> None:
    t = HVITransform()
    x = _hard_image().requires_grad_(True)
    t.inverse(t(x)).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(t.density_k.grad).all()


def test_gains() -> None:
    x = _hard_image()
    with torch.no_grad():
        plain = HVITransform()
        bright = HVITransform(alpha=0.5)
        vivid = HVITransform(alpha_s=2.0)
        assert torch.allclose(bright.inverse(plain(x)), 0.5 * plain.inverse(plain(x)), atol=1e-6)
        y = vivid.inverse(plain(x))
        assert (y - x).abs().max() > 0.1 and y.min() >= 0 and y.max() <= 1


def test_atan2_matches_torch_including_axes_and_origin() -> None:
    g = torch.Generator().manual_seed(1)
    y, x = torch.randn(5000, generator=g), torch.randn(5000, generator=g)
    axes = torch.tensor([0.0, 1.0, -1.0, 1e-30, -1e-30, 3.0])
    yy, xx = torch.meshgrid(axes, axes, indexing="ij")
    y, x = torch.cat([y, yy.flatten()]), torch.cat([x, xx.flatten()])
    ours, ref = atan2(y, x), torch.atan2(y, x)
    assert (ours - ref).abs().max().item() <= 1e-6
    assert atan2(torch.zeros(1), torch.zeros(1)).item() == 0.0


class _RoundTrip(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hvi = HVITransform(k=0.3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hvi(x)
        return h, self.hvi.inverse(h)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_matches_onnxruntime() -> None:
    model = _RoundTrip().eval()
    buf = io.BytesIO()
    torch.onnx.export(
        model, (torch.rand(1, 3, 16, 16),), buf, dynamo=False, opset_version=17,
        input_names=["rgb"], output_names=["hvi", "back"], dynamic_axes={"rgb": {0: "N", 2: "H", 3: "W"}},
    )  # fmt: skip
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert "ScatterND" not in ops and "Atan" in ops  # no index assignment; atan2 built from atan
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = _hard_image(seed=5, h=40, w=24)  # another size than traced
    hvi, back = sess.run(None, {"rgb": x.numpy()})
    with torch.no_grad():
        ref_hvi, ref_back = model(x)
    np.testing.assert_allclose(hvi, ref_hvi.numpy(), atol=1e-5)
    np.testing.assert_allclose(back, ref_back.numpy(), atol=1e-5)
    assert np.abs(back - x.numpy()).max() <= 1e-4


def test_half_precision_round_trip_is_finite_on_black_and_grey() -> None:
    """eps = 1e-8 underflows in fp16; black pixels must still not give 0 / 0 in the inverse."""
    t = HVITransform().half()
    x = _hard_image(seed=2).half()
    with torch.no_grad():
        y = t.inverse(t(x))
    assert torch.isfinite(y).all()
    assert (y.float() - x.float()).abs().max().item() <= 1e-2
