"""The benchmark's row table: GPU-only rows are listed everywhere and say why they cannot run here."""

from __future__ import annotations

from trt_inpaint.bench.backends import BY_KEY, DEFAULT_KEYS, Numeric, unavailable_reason
from trt_inpaint.export.spec import Stage


def test_cuda_graph_row_is_a_default_row_and_needs_cuda(tmp_path):
    b = BY_KEY["torch-cuda-graphs-fp16"]
    assert b.key in DEFAULT_KEYS and b.cuda_graphs and b.device == "cuda" and b.numeric is Numeric.FP16
    assert not any(r.cuda_graphs for k, r in BY_KEY.items() if k != b.key)
    import torch  # part of the dev install

    reason = unavailable_reason(b, tmp_path, (Stage.LAMA,))
    if torch.cuda.is_available():
        assert reason is None or "manifest" in reason  # an empty folder names no weights
    else:
        assert "no CUDA device" in reason
