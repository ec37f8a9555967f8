"""fp32 islands chosen by measurement: a model with an intermediate beyond the fp16 range."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from trt_inpaint.export import fp16, fp16_check, segmented
from trt_inpaint.export.onnx import export_onnx
from trt_inpaint.export.spec import Stage

SCALE = 50000.0  # the middle activation reaches ~1e5 and more, beyond fp16 65504


class Overflowing(torch.nn.Module):
    """A stage-shaped net (image, mask -> composited output) whose middle tensor exceeds fp16's range."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = torch.nn.Conv2d(4, 16, 3, padding=1)
        self.b = torch.nn.Conv2d(16, 16, 1)
        self.c = torch.nn.Conv2d(16, 3, 3, padding=1)
        with torch.no_grad():
            for conv in (self.a, self.b, self.c):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / conv.weight[0].numel() ** 0.5)
                conv.bias.zero_()
            self.b.weight.mul_(SCALE)  # up ...
            self.c.weight.div_(SCALE)  # ... and down again: fine in fp32, inf in fp16

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.a(torch.cat([image * (1 - mask), mask], 1))) + 1.0
        pred = torch.sigmoid(self.c(torch.relu(self.b(x))))
        return mask * pred + (1 - mask) * image


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory) -> onnx.ModelProto:
    path = export_onnx(Overflowing(), Stage.LAMA_DENOISER, tmp_path_factory.mktemp("fp16") / "m.onnx")
    return onnx.load(str(path))


def _feeds(n: int = 2, size: int = 64) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [
        {
            "image": rng.random((1, 3, size, size), dtype=np.float32),
            "mask": (rng.random((1, 1, size, size)) < 0.5).astype(np.float32),
        }
        for _ in range(n)
    ]


def test_naive_conversion_breaks(fp32_model):
    """Naive conversion (no measured islands): the fp16-stored intermediate overflows to inf."""
    feeds = _feeds()
    ref = segmented.run_onnx(fp32_model.SerializeToString(), feeds)
    got = segmented.run_onnx(fp16_check.simulate(fp32_model, []).SerializeToString(), feeds)
    comp = fp16_check.compare(ref, got, fp16_check.hole_masks(feeds))
    assert comp.nonfinite > 0, comp
    # the converted model itself is valid and runs (ONNX Runtime CPU computes it in fp32 between casts)
    naive = fp16.convert(fp32_model, [])
    assert np.isfinite(segmented.run_onnx(naive.SerializeToString(), feeds)[0]).all()


def test_measured_islands_are_faithful(fp32_model):
    feeds = _feeds()
    model16, result = fp16.make_fp16(fp32_model, feeds)
    assert result.passed, result.comparison
    assert result.comparison.nonfinite == 0
    assert result.comparison.psnr_db >= 45 and result.comparison.reference_std > 0.05
    reasons = " ".join(r for i in result.islands for r in i.reasons)
    assert "overflow" in reasons
    assert any(i.op == "Conv" for i in result.islands)
    # not the whole graph: the other convolutions run in fp16
    kinds = {i.type.tensor_type.elem_type for i in model16.graph.value_info}
    assert onnx.TensorProto.FLOAT16 in kinds
    assert len(result.islands) < len(fp32_model.graph.node)
    # a fresh check on other inputs
    other = _feeds(1, 96)
    ref = segmented.run_onnx(fp32_model.SerializeToString(), other)
    names = [i.node for i in result.islands]
    for got in (model16, fp16_check.simulate(fp32_model, names)):
        comp = fp16_check.compare(
            ref, segmented.run_onnx(got.SerializeToString(), other), fp16_check.hole_masks(other)
        )
        assert comp.nonfinite == 0 and comp.psnr_db >= 40 and comp.reference_std > 0.05, comp


def test_tiny_divisor_is_kept_fp32(tmp_path):
    """x / (count + 1e-8): the eps flushes to 0 in fp16 and 0/0 gives NaN; measurement keeps it fp32."""

    class Ratio(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            count = torch.nn.functional.avg_pool2d(1 - mask, 3, 1, 1) * 9
            ratio = 9 / (count + 1e-8) * (count > 0).float()
            pred = torch.clamp(image * ratio / 9, 0, 1)
            return mask * pred + (1 - mask) * image

    path = export_onnx(Ratio(), Stage.LAMA_DENOISER, tmp_path / "r.onnx")
    model = onnx.load(str(path))
    feeds = _feeds()
    for f in feeds:
        f["mask"][..., 8:40, 8:40] = 1.0  # a hole wider than the 3x3 window: count == 0 inside
    model16, result = fp16.make_fp16(model, feeds)
    assert result.comparison.nonfinite == 0 and result.passed, result
    assert any("divisor" in r or "overflow" in r for i in result.islands for r in i.reasons)
