"""NVIDIA GPU facts through NVML (ctypes, the driver's own library): no torch, no CUDA toolkit needed."""

from __future__ import annotations

import ctypes
import functools


class _MemoryInfo(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


@functools.cache
def _nvml() -> ctypes.CDLL | str:
    """The initialised NVML library, or a string saying why there is none."""
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return "no NVIDIA driver here (libnvidia-ml.so.1 not found)"
    if lib.nvmlInit_v2() != 0:
        return "NVML failed to initialise (is the NVIDIA driver loaded?)"
    return lib


def gpu_problem() -> str | None:
    """None when at least one NVIDIA GPU is visible, else the reason."""
    lib = _nvml()
    if isinstance(lib, str):
        return lib
    count = ctypes.c_uint(0)
    if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0 or count.value == 0:
        return "no NVIDIA GPU visible"
    return None


def device_memory_used(device: int = 0) -> int | None:
    """Bytes in use on GPU ``device`` (all processes), or None without NVML."""
    lib = _nvml()
    if isinstance(lib, str):
        return None
    handle = ctypes.c_void_p()
    if lib.nvmlDeviceGetHandleByIndex_v2(device, ctypes.byref(handle)) != 0:
        return None
    info = _MemoryInfo()
    if lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(info)) != 0:
        return None
    return int(info.used)


def process_rss() -> int:
    """Resident memory of this process in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)
