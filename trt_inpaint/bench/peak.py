"""This machine's fp32 matrix-multiply peak, measured in the same run as the benchmark.

Two measurements of a square fp32 matmul: numpy's BLAS and ONNX Runtime's MatMul (the kernels a CPU
backend uses). The larger is the reference ceiling for "% of peak".
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from trt_inpaint.bench.timing import clock


@dataclass(frozen=True)
class Peak:
    flops: float  # FLOP/s, the ceiling used for "% of peak"
    numpy_flops: float | None
    ort_flops: float | None
    n: int
    threads: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


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


def measure_peak(n: int = 2048, repeats: int = 8, threads: int | None = None) -> Peak:
    """Measure both; failures of one are noted, not fatal."""
    notes = []
    try:
        np_f = numpy_matmul_flops(n, repeats)
    except Exception as e:  # pragma: no cover - numpy always runs
        np_f, _ = None, notes.append(f"numpy: {e}")
    try:
        ort_f = ort_matmul_flops(n, repeats, threads)
    except Exception as e:
        ort_f, _ = None, notes.append(f"onnxruntime: {e}")
    best = max(f for f in (np_f, ort_f, 0.0) if f is not None)
    return Peak(best, np_f, ort_f, n, threads or (os.cpu_count() or 1), "; ".join(notes))
