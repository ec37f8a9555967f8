"""PyTorch rows with CUDA graphs: each stage's forward is captured once per input shape, then replayed.

Capture happens in the first call for a shape (timed with the first run, among the one-time costs); later
calls copy the inputs into the captured buffers and replay. Needs a CUDA device (the row says so otherwise).
"""

from __future__ import annotations

import contextlib

import numpy as np

from trt_inpaint.export.spec import spec
from trt_inpaint.runtime.backends.base import Runner

WARMUP_CALLS = 2  # eager calls on a side stream before capture (cuDNN / cuBLAS pick their algorithms)


def cuda_graph_runner(runner: Runner, dtype: str) -> Runner:
    """Wrap a CUDA TorchRunner's ``_run`` / ``_unload`` so that its stage runs as replayed CUDA graphs,
    under ``torch.autocast`` to ``dtype`` ("fp16" / "bf16"; "fp32": none)."""
    graphs: dict[tuple, tuple] = {}  # input shapes -> (graph, static inputs, static output)
    unload = runner._unload

    def precision():
        import torch

        if dtype == "fp32":
            return contextlib.nullcontext()
        half = torch.bfloat16 if dtype == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=half, cache_enabled=False)  # no weight-cast cache in a graph

    def capture(static: list) -> tuple:
        import torch

        module = runner._module  # type: ignore[attr-defined]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode(), precision():
            for _ in range(WARMUP_CALLS):
                module(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), precision(), torch.cuda.graph(graph):
            out = module(*static)
        return graph, static, out

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        s = spec(runner.stage)  # type: ignore[attr-defined]
        arrays = [np.ascontiguousarray(feeds[n], dtype=np.float32) for n in s.input_names]
        key = tuple(a.shape for a in arrays)
        if key not in graphs:
            with torch.inference_mode():
                static = [torch.from_numpy(a).to(runner.device) for a in arrays]  # type: ignore[attr-defined]
            graphs[key] = capture(static)
        graph, static, out = graphs[key]
        with torch.inference_mode():
            for t, a in zip(static, arrays, strict=True):
                t.copy_(torch.from_numpy(a), non_blocking=False)
            graph.replay()
            return {s.output_names[0]: out.float().cpu().numpy()}

    def release() -> None:
        graphs.clear()
        unload()

    runner._run = run  # type: ignore[method-assign]
    runner._unload = release  # type: ignore[method-assign]
    return runner
