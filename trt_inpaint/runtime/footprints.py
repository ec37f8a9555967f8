"""Footprints measured in earlier runs, so the budget check before any work uses real numbers.

Keyed by backend and the stage file's path, size and modification time: a rebuilt file is measured anew.
Stored as JSON in the user's cache folder (``$TRT_INPAINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/trt-inpaint``,
else ``~/.cache/trt-inpaint``). A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from trt_inpaint import atomic
from trt_inpaint.runtime.backends.base import Runner

FILE_NAME = "footprints.json"


def default_cache_path() -> Path:
    folder = os.environ.get("TRT_INPAINT_CACHE_DIR")
    if folder:
        return Path(folder) / FILE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trt-inpaint" / FILE_NAME


def runner_key(runner: Runner) -> str | None:
    """backend[/variant]|path|size|mtime of the runner's file; None for runners without one."""
    path = getattr(runner, "path", None)
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    kind = f"{runner.backend}/{runner.variant}" if getattr(runner, "variant", "") else str(runner.backend)
    return f"{kind}|{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"


class FootprintCache:
    """A small persistent map runner key -> bytes."""

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self._data: dict[str, int] = {}
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                self._data = {k: int(v) for k, v in data.items()} if isinstance(data, dict) else {}
            except (OSError, ValueError, TypeError):
                self._data = {}

    def get(self, runner: Runner) -> int | None:
        key = runner_key(runner)
        return None if key is None else self._data.get(key)

    def put(self, runner: Runner, footprint: int) -> None:
        key = runner_key(runner)
        if key is None or self.path is None or self._data.get(key) == footprint:
            return
        self._data[key] = int(footprint)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.path, json.dumps(self._data, indent=1, sort_keys=True))
        except OSError:
            pass
