"""This machine's matrix-multiply peak, fp32 and bf16, measured in the same run as the benchmark.

Square n x n matmuls through the kernels the CPU backends use; the largest per precision is the ceiling for
"% of peak" of the rows of that precision.

- fp32: numpy's BLAS (both operands inputs), ONNX Runtime's MatMul (both inputs), OpenVINO's MatMul with
  the second operand a constant (as a layer's weights; OpenVINO runs it as a fully connected layer), f32.
- bf16, only where the CPU computes bf16 natively (``runtime.cpu``): the same OpenVINO model with
  ``INFERENCE_PRECISION_HINT`` bf16 (fp32 in and out, bf16 inside, as the openvino-bf16 rows run), and
  ``torch.matmul`` of two bf16 tensors (oneDNN's AMX / AVX512-BF16 kernels). Elsewhere it is not measured
  and the note says why.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

import numpy as np

from trt_inpaint.bench.timing import clock


@dataclass(frozen=True)
class Peak:
    flops: float  # fp32 FLOP/s, the ceiling of the fp32 (and fp16) rows' "% of peak"
    numpy_flops: float | None
    ort_flops: float | None
    n: int
    threads: int
    note: str = ""
    openvino_flops: float | None = None
    bf16_flops: float | None = None  # the ceiling of the bf16 rows (None: not measured, see bf16_note)
    openvino_bf16_flops: float | None = None
    torch_bf16_flops: float | None = None
    bf16_note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Peak:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _best(fn, repeats: int, flop: float) -> float:
    fn()  # warm-up
    best = min(_one(fn) for _ in range(repeats))
    return flop / best


def _one(fn) -> float:
    t0 = clock()
    fn()
    return clock() - t0


def numpy_matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    return _best(lambda: np.matmul(a, b, out=out), repeats, 2.0 * n**3)


def ort_matmul_flops(n: int = 2048, repeats: int = 5, threads: int | None = None) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul_peak",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds = {x: rng.standard_normal((n, n), dtype=np.float32) for x in ("a", "b")}
    return _best(lambda: sess.run(None, feeds), repeats, 2.0 * n**3)


def openvino_matmul_flops(
    n: int = 2048, repeats: int = 5, threads: int | None = None, hint: str = "f32"
) -> float:
    """OpenVINO on the CPU: x (input) @ w (a constant), with inference precision ``hint``."""
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(2)
    a = ops.parameter([n, n], ov.Type.f32, name="a")
    w = ops.constant(rng.standard_normal((n, n), dtype=np.float32))
    model = ov.Model([ops.matmul(a, w, False, False)], [a], "matmul_peak")
    config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    config["INFERENCE_NUM_THREADS"] = threads or (os.cpu_count() or 1)
    compiled = ov.Core().compile_model(model, "CPU", config)
    got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if got != hint:
        raise RuntimeError(f"OpenVINO compiled the matmul for {got}, not {hint}")
    request = compiled.create_infer_request()
    x = rng.standard_normal((n, n), dtype=np.float32)
    return _best(lambda: request.infer([x]), repeats, 2.0 * n**3)


def torch_bf16_matmul_flops(n: int = 2048, repeats: int = 5, threads: int | None = None) -> float:
    import torch

    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(3)
    a, b = (torch.randn(n, n, generator=g).to(torch.bfloat16) for _ in range(2))
    out = torch.empty(n, n, dtype=torch.bfloat16)
    return _best(lambda: torch.matmul(a, b, out=out), repeats, 2.0 * n**3)


def _try(fn, label: str, notes: list[str]) -> float | None:
    try:
        return fn()
    except Exception as e:  # a library missing or failing is noted, never fatal
        notes.append(f"{label}: {' '.join(str(e).split())[:200] or type(e).__name__}")
        return None


def measure_peak(
    n: int = 2048, repeats: int = 8, threads: int | None = None, bf16: bool | None = None
) -> Peak:
    """Measure every kernel above; failures of one are noted, not fatal. ``bf16``: measure the bf16 peak
    (default: where the CPU has native bf16, by ``runtime.backends.openvino.cpu_bf16``)."""
    from trt_inpaint.runtime.backends.openvino import cpu_bf16

    notes: list[str] = []
    np_f = _try(lambda: numpy_matmul_flops(n, repeats), "numpy", notes)
    ort_f = _try(lambda: ort_matmul_flops(n, repeats, threads), "onnxruntime", notes)
    ov_f = _try(lambda: openvino_matmul_flops(n, repeats, threads), "openvino", notes)
    best = max(f for f in (np_f, ort_f, ov_f, 0.0) if f is not None)
    verdict = cpu_bf16()
    bf16_notes: list[str] = []
    ov_bf, torch_bf = None, None
    if verdict.native if bf16 is None else bf16:
        ov_bf = _try(lambda: openvino_matmul_flops(n, repeats, threads, "bf16"), "openvino bf16", bf16_notes)
        torch_bf = _try(lambda: torch_bf16_matmul_flops(n, repeats, threads), "torch bf16", bf16_notes)
    elif bf16 is False:
        bf16_notes.append("not measured (not asked)")
    else:
        bf16_notes.append(f"not measured: no native bf16 on this CPU ({verdict.why})")
    bf_best = max((f for f in (ov_bf, torch_bf) if f is not None), default=None)
    return Peak(
        best, np_f, ort_f, n, threads or (os.cpu_count() or 1), "; ".join(notes), ov_f, bf_best, ov_bf,
        torch_bf, "; ".join(bf16_notes),
    )  # fmt: skip
