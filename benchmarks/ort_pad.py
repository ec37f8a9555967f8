"""ONNX Runtime's reflect Pad against its thread count: the op big-LaMa's exported graph runs before each 3x3
convolution of its FFC blocks (ONNX Runtime has no blocked-layout Pad, nor folds a reflect pad into Conv),
alone at the FFC blocks' shape for the smallest and the largest size of ``lama_scaling.py``, with 1 and with
all intra-op threads, beside an element-wise op on the same tensor (Add of a zero: a copy, which ONNX
Runtime splits over its threads) as the reference for what the memory system gives.

Each op is a one-node graph whose output is bound to an array allocated once (IOBinding), so no run
page-faults; every output is checked against numpy's before timing. Cases alternate in ``--rounds`` rounds
(each case ``--runs`` timed runs per round after one warm-up), so all see the same minutes.

    PYTHONPATH=. python benchmarks/ort_pad.py --out benchmarks/reports/cpu-2core

Writes ort-pad.json and ort-pad.md into --out; about a minute on 2 cores."""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script lama_scaling.py
import lama_scaling  # noqa: E402

# case name -> (ONNX op type, its attributes, what numpy makes of the input)
CASES: dict[str, tuple[str, dict, Callable[[np.ndarray], np.ndarray]]] = {
    "Pad, reflect": (
        "Pad",
        {"mode": "reflect"},
        lambda x: np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), "reflect"),
    ),
    "Add of 0 (a copy)": ("Add", {}, lambda x: x),
}


def ffc_shape(size: int) -> tuple[int, int]:
    """(channels, side) of big-LaMa's FFC blocks (local and global branches together) for a size x size
    input, from ``LamaGenerator``'s defaults."""
    from trt_inpaint.models.lama import LamaGenerator

    d = {k: v.default for k, v in inspect.signature(LamaGenerator).parameters.items()}
    return min(d["max_features"], d["ngf"] * 2 ** d["n_downsampling"]), size // 2 ** d["n_downsampling"]


def graph(op: str, attrs: dict) -> bytes:
    """A one-node graph over x (1, C, H, W): ``Pad`` by one pixel on each side of H and W, or ``Add`` of 0."""
    from onnx import TensorProto, helper, numpy_helper

    if op == "Pad":
        second = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "b")
    else:
        second = numpy_helper.from_array(np.zeros(1, np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "C", "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node(op, ["x", "b"], ["y"], **attrs)], op, [x], [y], [second])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def bound(case: str, threads: int, x: np.ndarray):
    """A session of ``case`` with ``threads`` intra-op threads (spinning off), its input and its output
    bound; returns (session, binding, output array). Raises AssertionError if the output is not numpy's."""
    op, attrs, expect = CASES[case]
    sess = lama_scaling.ort_session(graph(op, attrs), threads=threads)
    want = expect(x)
    y = np.empty_like(want)
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
    sess.run_with_iobinding(binding)  # warm-up, and the check
    np.testing.assert_array_equal(y, want, err_msg=f"{case}: ONNX Runtime's output is not numpy's")
    return sess, binding, y


def measure(channels: int, sides: tuple[int, ...], threads: tuple[int, ...], rounds: int, runs: int) -> dict:
    """{"ms": {case: {side: {threads: [milliseconds per run]}}}, "bytes": {case: {side: input + output
    bytes}}}."""
    rng = np.random.default_rng(0)
    inputs = {side: rng.random((1, channels, side, side), dtype=np.float32) for side in sides}
    sessions = {(c, s, t): bound(c, t, inputs[s]) for c in CASES for s in sides for t in threads}
    ms: dict = {c: {str(s): {str(t): [] for t in threads} for s in sides} for c in CASES}
    moved = {
        c: {str(s): inputs[s].nbytes + sessions[c, s, threads[0]][2].nbytes for s in sides} for c in CASES
    }
    for _ in range(rounds):
        for (case, side, n), (sess, binding, _) in sessions.items():
            for _ in range(runs):
                start = time.perf_counter()
                sess.run_with_iobinding(binding)
                ms[case][str(side)][str(n)].append((time.perf_counter() - start) * 1e3)
    return {"ms": ms, "bytes": moved}


def render(data: dict) -> str:
    m, (lo, hi), c, sizes = data["machine"], data["sides"], data["channels"], data["sizes"]
    lines = [
        "# ONNX Runtime's reflect Pad against its thread count (CPU fp32)",
        "",
        f"{data['date']} on **{m['cpu']}**, {m['cores']} cores (flags: {', '.join(m['flags'])}), "
        f"ONNX Runtime {m['onnxruntime']}, spinning off. One-node graphs on a (1, {c}, side, side) float32 "
        "tensor: big-LaMa's "
        f"FFC blocks (local and global channels together) at {lo}x{lo} for a {sizes[0]}x{sizes[0]} input "
        f"and at {hi}x{hi} for {sizes[1]}x{sizes[1]}. Outputs bound to arrays allocated once (no page "
        "faults) and checked against numpy's. Median of "
        f"{data['rounds']} rounds x {data['runs']} runs, cases alternating. GB/s: bytes read and written "
        f"over the time. The last column: time per pixel at {hi}x{hi} over that at {lo}x{lo}.",
        "",
        f"| op | threads | ms at {lo}x{lo} | GB/s | ms at {hi}x{hi} | GB/s | per-pixel ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, per in data["ms"].items():
        for n in per[str(lo)]:
            cells = [case, n]
            for side in (lo, hi):
                ms = statistics.median(per[str(side)][n])
                cells += [f"{ms:.3f}", f"{data['bytes'][case][str(side)] / ms / 1e6:.1f}"]
            ratio = statistics.median(per[str(hi)][n]) / statistics.median(per[str(lo)][n]) / (hi / lo) ** 2
            lines.append("| " + " | ".join(cells + [f"{ratio:.2f}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports/cpu-2core"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=10, help="timed runs per case and round")
    a = p.parse_args(argv)
    sizes = (lama_scaling.SIZES[0], lama_scaling.SIZES[-1])
    (channels, lo), (_, hi) = ffc_shape(sizes[0]), ffc_shape(sizes[1])
    threads = (1, os.cpu_count() or 1)
    data = lama_scaling.header()
    data["sizes"], data["sides"], data["channels"] = sizes, (lo, hi), channels
    data["rounds"], data["runs"] = a.rounds, a.runs
    data.update(measure(channels, (lo, hi), threads, a.rounds, a.runs))
    lama_scaling.write_report(a.out, "ort-pad", data, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
