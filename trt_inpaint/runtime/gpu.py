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


def _device(device: int) -> tuple[ctypes.CDLL, ctypes.c_void_p] | None:
    """NVML and the handle of GPU ``device`` (NVML's PCI order), or None without NVML or that GPU."""
    lib = _nvml()
    if isinstance(lib, str):
        return None
    handle = ctypes.c_void_p()
    if lib.nvmlDeviceGetHandleByIndex_v2(device, ctypes.byref(handle)) != 0:
        return None
    return lib, handle


def device_memory_used(device: int = 0) -> int | None:
    """Bytes in use on GPU ``device`` (all processes), or None without NVML."""
    found = _device(device)
    if found is None:
        return None
    lib, handle = found
    info = _MemoryInfo()
    if lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(info)) != 0:
        return None
    return int(info.used)


def compute_capability(device: int = 0) -> tuple[int, int] | None:
    """(major, minor) of NVML device ``device`` (NVML's PCI order), or None without NVML."""
    found = _device(device)
    if found is None:
        return None
    lib, handle = found
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    if lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) != 0:
        return None
    return int(major.value), int(minor.value)


def shared_compute_capability() -> tuple[int, int] | None:
    """The compute capability of every NVIDIA GPU here when they all have the same one, else None (NVML
    counts GPUs in PCI order, ignoring CUDA_VISIBLE_DEVICES, so on mixed machines it cannot tell which one
    CUDA uses)."""
    lib = _nvml()
    if isinstance(lib, str):
        return None
    count = ctypes.c_uint(0)
    if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0 or count.value == 0:
        return None
    ccs = {compute_capability(i) for i in range(count.value)}
    return ccs.pop() if len(ccs) == 1 else None


ARCHITECTURES = {(7, 5): "Turing", (8, 0): "Ampere A100", (8, 6): "Ampere", (8, 7): "Ampere Orin",
                 (8, 9): "Ada", (9, 0): "Hopper"}  # fmt: skip
MAJOR_ARCHITECTURES = {10: "Blackwell data-centre", 11: "Blackwell Thor", 12: "Blackwell"}


def architecture(cc: tuple[int, int]) -> str | None:
    return ARCHITECTURES.get(cc) or MAJOR_ARCHITECTURES.get(cc[0])


# the export-engines --rtx-targets value that covers a compute capability ((major, None): any minor)
RTX_TARGET_OF = {(7, 5): "sm75", (8, 6): "sm86", (8, 9): "sm89", (12, None): "sm120"}


def target_problem(targets: list[str], cc: tuple[int, int]) -> str | None:
    """None when a TensorRT-RTX engine built for ``targets`` (manifest form: "8.6", "12.x") runs on a GPU of
    compute capability ``cc``; else a one-line reason with the way out."""
    have = f"{cc[0]}.{cc[1]}"
    if any(t == have or (t.endswith(".x") and t[:-2] == str(cc[0])) for t in map(str, targets)):
        return None
    arch = architecture(cc)
    target = RTX_TARGET_OF.get(cc) or RTX_TARGET_OF.get((cc[0], None))
    rebuild = f", or export-engines --rtx-targets {target}" if target else ""
    what = f"{have} ({arch})" if arch else have
    if cc[0] == 9:
        what = f"{have} (Hopper is not supported by TensorRT-RTX)"
    return (
        f"engine built for compute capabilities {', '.join(map(str, targets))}; this GPU is {what}: "
        f"use --backend ort-cuda{rebuild}, or build with full TensorRT on this GPU"
    )


def process_rss() -> int:
    """Resident memory of this process in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)
