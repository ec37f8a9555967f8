"""Atomic file writes: a temporary file in the target's folder, renamed over the target when complete.

A reader sees the old file or the new one, never a partial one. Each write gets its own temporary name
(created exclusively), so writers to one target never collide: the last rename wins. On any failure (the
data, the disk, the rename) the temporary file is removed and the old target is left as it was.

The new file gets the permissions a plain ``open(path, "w")`` would give: the replaced file's mode, or
0o666 less the umask for a new file (the kernel applies the umask when the temporary file is created).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_ATTEMPTS = 100


def temp_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` that keeps its suffix (writers that choose the format by the
    extension, like cv2.imwrite or np.save, still see it): ``dir/.<stem>.<random>.tmp<suffix>``."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")


def _create_temp(path: Path) -> Path:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = temp_name(path)
        try:
            os.close(os.open(tmp, flags, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} tries")


def _commit(tmp: Path, path: Path, new_mode: int) -> None:
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:  # no target yet
        mode = new_mode
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path (an empty file) beside ``path`` for a writer that needs a path (onnx.save,
    np.save, torch.save, a TensorRT serialisation, ...); on a normal exit it replaces ``path``, on any
    exception it is removed and ``path`` is left untouched. The parent folder must exist."""
    path = Path(path)
    tmp = _create_temp(path)
    try:
        new_mode = tmp.stat().st_mode & 0o7777  # 0o666 less the umask, as the kernel created it
        yield tmp
        _commit(tmp, path, new_mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` (any bytes-like object) to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode(encoding))
