"""PyTorch rows in reduced precision: the runtime's torch runner with its calls inside ``torch.autocast``."""

from __future__ import annotations

import numpy as np

from trt_inpaint.runtime.backends.base import Runner


def autocast_runner(runner: Runner, dtype: str) -> Runner:
    """Wrap ``runner._run`` (a TorchRunner) so that it runs under autocast to ``dtype`` ("bf16" / "fp16")."""
    inner = runner._run

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        device_type = "cuda" if str(runner.device).startswith("cuda") else "cpu"
        with torch.autocast(device_type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16):
            return inner(feeds)

    runner._run = run  # type: ignore[method-assign]
    return runner
