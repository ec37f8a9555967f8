"""Intermediate tensors between stages: in host memory up to a cap, spilled to a temporary folder beyond."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np


class IntermediateStore:
    """A key -> array map holding at most ``cap`` bytes in memory (None: no cap); the rest lives on disk."""

    def __init__(self, cap: int | None, spill_dir: str | Path | None = None):
        self.cap = cap
        self._parent = spill_dir
        self._memory: dict[str, np.ndarray] = {}
        self._disk: dict[str, Path] = {}
        self._tmp: Path | None = None
        self.in_memory = 0
        self.peak_in_memory = 0
        self.spilled = 0  # arrays written to disk so far

    def _spill_path(self, key: str) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="trt-inpaint-", dir=self._parent))
        return self._tmp / f"{len(self._disk)}-{abs(hash(key))}.npy"

    def put(self, key: str, array: np.ndarray) -> None:
        self.drop(key)
        if self.cap is not None and self.in_memory + array.nbytes > self.cap:
            path = self._spill_path(key)
            np.save(path, array, allow_pickle=False)
            self._disk[key] = path
            self.spilled += 1
            return
        self._memory[key] = array
        self.in_memory += array.nbytes
        self.peak_in_memory = max(self.peak_in_memory, self.in_memory)

    def get(self, key: str) -> np.ndarray:
        if key in self._memory:
            return self._memory[key]
        return np.load(self._disk[key], allow_pickle=False)

    def __contains__(self, key: str) -> bool:
        return key in self._memory or key in self._disk

    def drop(self, key: str) -> None:
        if key in self._memory:
            self.in_memory -= self._memory.pop(key).nbytes
        elif key in self._disk:
            self._disk.pop(key).unlink(missing_ok=True)

    def close(self) -> None:
        self._memory.clear()
        self._disk.clear()
        self.in_memory = 0
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> IntermediateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
