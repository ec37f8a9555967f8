"""glibc's allocator in a long-running server: keep large buffers (decoded images, working tensors) in
their own mappings, so freeing one gives it back to the system, and hand freed heap pages back regularly.
Without this a server's threads leave freed image-sized blocks in glibc's per-thread heaps and the resident
size creeps up for hundreds of requests. Does nothing where the C library is not glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import time

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
LARGE = 128 * 1024  # glibc's initial threshold, kept fixed (it rises after frees by default)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (present only in glibc)
        return libc
    except (OSError, AttributeError):
        return None


class Malloc:
    def __init__(self, trim_every: float = 1.0):
        self.libc = _libc()
        self.trim_every = trim_every
        self.last = 0.0

    def keep_large_blocks_apart(self) -> None:
        if self.libc is not None:
            self.libc.mallopt(M_MMAP_THRESHOLD, LARGE)

    def trim(self, force: bool = False) -> None:
        """Give freed heap pages back (at most every ``trim_every`` seconds unless ``force``)."""
        now = time.monotonic()
        if self.libc is not None and (force or now - self.last >= self.trim_every):
            self.last = now
            self.libc.malloc_trim(0)
