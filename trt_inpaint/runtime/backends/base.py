"""The runner contract every backend implements; the pool and the pipeline talk only to this.

with make_runner(...) as runner:        # load() on enter, unload() on exit
    out = runner.run({"image": x, "mask": m})   # dict name -> np.ndarray (float32, NCHW)
    runner.footprint                    # bytes this stage holds while loaded (measured at load)
"""

from __future__ import annotations

import abc
import enum

import numpy as np

from trt_inpaint.errors import BudgetError, EngineError, TrtInpaintError


class Backend(str, enum.Enum):
    AUTO = "auto"
    TENSORRT = "tensorrt"
    ORT_CUDA = "ort-cuda"
    ORT_CPU = "ort-cpu"
    OPENVINO = "openvino"
    TORCH = "torch"

    def __str__(self) -> str:
        return self.value


class Runner(abc.ABC):
    """One stage on one backend. Subclasses implement ``_load``, ``_run`` and ``_unload``."""

    backend: Backend
    # what else tells two runners of one backend and file apart, where it changes what a stage holds
    # (OpenVINO: the device and the inference precision); part of the footprint cache's key
    variant: str = ""

    def __init__(self, name: str):
        self.name = name
        self._loaded = False
        self.footprint: int = 0  # bytes, measured by _load
        self.load_count = 0

    def estimate_footprint(self) -> int:
        """Bytes this stage is expected to hold, before loading (e.g. the file size); 0 if unknown."""
        return 0

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True
            self.load_count += 1

    def unload(self) -> None:
        if self._loaded:
            self._unload()
            self._loaded = False

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name. The runner must be loaded (by the pool, or ``with runner:``): it never loads
        behind the pool's back. A failure inside the backend becomes an ``EngineError`` naming the stage."""
        if not self._loaded:
            raise RuntimeError(f"runner {self.name} is not loaded: acquire it from the pool or use `with`")
        try:
            return self._run(feeds)
        except TrtInpaintError:
            raise
        except MemoryError as e:
            raise BudgetError(f"stage {self.name}: out of memory while running ({self.backend})") from e
        except Exception as e:  # the backend's own exception types (onnxruntime, TensorRT, torch)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise EngineError(f"stage {self.name} failed on {self.backend}: {first}") from e

    def __enter__(self) -> Runner:
        self.load()
        return self

    def __exit__(self, *exc) -> None:
        self.unload()

    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _unload(self) -> None: ...
