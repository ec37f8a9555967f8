"""PyTorch runner: the reference stage wrappers of ``trt_inpaint.models.stages``, run eagerly.

torch is imported in ``load`` only. Footprint: resident-memory growth over load, never less than the
parameter and buffer bytes (CPU), or the CUDA allocator's growth (GPU).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.export.spec import Stage, spec
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.backends.base import Backend, Runner


def import_torch():
    try:
        import torch
    except ImportError as e:
        raise BackendUnavailable(f"torch is not installed (pip install 'trt-inpaint[torch]'): {e}") from e
    return torch


class TorchRunner(Runner):
    """``factory()`` returns the stage wrapper module (forward takes the spec inputs positionally).

    ``device`` "auto" takes CUDA when torch sees a GPU, else the CPU.
    """

    backend = Backend.TORCH

    def __init__(
        self, stage: Stage, factory: Callable[[], object], *, device: str = "cpu", size_hint: int = 0
    ):
        super().__init__(Stage(stage).value)
        self.stage = Stage(stage)
        self.factory = factory
        self.device = device
        self.size_hint = size_hint  # bytes, for the pool's estimate before loading
        self._module = None

    def estimate_footprint(self) -> int:
        return self.size_hint

    def _load(self) -> None:
        torch = import_torch()
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        before = torch.cuda.memory_allocated() if self.device.startswith("cuda") else gpu.process_rss()
        module = self.factory().eval().to(self.device)
        weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
        if self.device.startswith("cuda"):
            self.footprint = max(torch.cuda.memory_allocated() - before, weights)
        else:
            self.footprint = max(gpu.process_rss() - before, weights)
        self._module = module

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = import_torch()
        s = spec(self.stage)
        args = [
            torch.from_numpy(np.ascontiguousarray(feeds[n], dtype=np.float32)).to(self.device)
            for n in s.input_names
        ]
        with torch.inference_mode():
            out = self._module(*args)
        return {s.output_names[0]: out.float().cpu().numpy()}

    def _unload(self) -> None:
        self._module = None
        if self.device.startswith("cuda"):
            import_torch().cuda.empty_cache()
