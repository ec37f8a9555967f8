"""NVIDIA GPU facts through NVML (ctypes, the driver's own library): no torch, no CUDA toolkit needed.

Devices are addressed by their CUDA device number (what ``--device``/``device_id`` mean to ONNX Runtime,
TensorRT and torch). NVML numbers GPUs in PCI bus order and ignores ``CUDA_VISIBLE_DEVICES``, so a CUDA
number is matched to an NVML device by UUID: ``CUDA_VISIBLE_DEVICES`` is read as CUDA reads it (indices,
``GPU-`` UUIDs or unique prefixes, ``MIG-`` UUIDs, legacy ``MIG-GPU-<uuid>/<gi>/<ci>``; the list ends at
the first entry that names no device). Where NVML alone cannot place an index (CUDA's default
FASTEST_FIRST order on a machine with different GPU models), the CUDA driver is asked for the UUID.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

UUID_BUFFER = 96  # NVML_DEVICE_UUID_V2_BUFFER_SIZE, also enough for names (NVML_DEVICE_NAME_V2_BUFFER_SIZE)


class _MemoryInfo(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


@dataclass(frozen=True)
class MigInstance:
    uuid: str  # "MIG-..."
    gpu_instance: int
    compute_instance: int


@dataclass(frozen=True)
class GpuInfo:
    """One physical GPU as NVML lists it."""

    index: int  # NVML's index (PCI bus order)
    uuid: str  # "GPU-..."
    name: str
    migs: tuple[MigInstance, ...] = ()


@dataclass(frozen=True)
class Visible:
    """The NVML device behind one CUDA device number."""

    uuid: str  # the device CUDA runs on: "GPU-..." or, for a MIG instance, "MIG-..."
    gpu_uuid: str  # the physical GPU ("GPU-..."; the same as ``uuid`` without MIG)


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


def _text(fn, handle) -> str | None:
    buf = ctypes.create_string_buffer(UUID_BUFFER)
    return buf.value.decode() if fn(handle, buf, ctypes.c_uint(UUID_BUFFER)) == 0 else None


def _migs(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> tuple[MigInstance, ...]:
    current, pending = ctypes.c_uint(0), ctypes.c_uint(0)
    if (
        lib.nvmlDeviceGetMigMode(handle, ctypes.byref(current), ctypes.byref(pending)) != 0
        or not current.value
    ):
        return ()
    count = ctypes.c_uint(0)
    if lib.nvmlDeviceGetMaxMigDeviceCount(handle, ctypes.byref(count)) != 0:
        return ()
    out = []
    for i in range(count.value):
        mig = ctypes.c_void_p()
        if lib.nvmlDeviceGetMigDeviceHandleByIndex(handle, ctypes.c_uint(i), ctypes.byref(mig)) != 0:
            continue
        gi, ci = ctypes.c_uint(0), ctypes.c_uint(0)
        uuid = _text(lib.nvmlDeviceGetUUID, mig)
        if (
            uuid
            and lib.nvmlDeviceGetGpuInstanceId(mig, ctypes.byref(gi)) == 0
            and lib.nvmlDeviceGetComputeInstanceId(mig, ctypes.byref(ci)) == 0
        ):
            out.append(MigInstance(uuid, int(gi.value), int(ci.value)))
    return tuple(out)


def nvml_gpus() -> list[GpuInfo]:
    """Every NVIDIA GPU NVML sees (whatever CUDA_VISIBLE_DEVICES says), in NVML's order; [] without NVML."""
    lib = _nvml()
    if isinstance(lib, str):
        return []
    count = ctypes.c_uint(0)
    if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
        return []
    out = []
    for i in range(count.value):
        handle = ctypes.c_void_p()
        if lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(i), ctypes.byref(handle)) != 0:
            continue
        uuid = _text(lib.nvmlDeviceGetUUID, handle)
        if uuid:
            out.append(GpuInfo(i, uuid, _text(lib.nvmlDeviceGetName, handle) or "", _migs(lib, handle)))
    return out


def parse_visible_devices(value: str | None) -> tuple[str, ...] | None:
    """``CUDA_VISIBLE_DEVICES`` split into its entries (None when unset: every device is visible)."""
    if value is None:
        return None
    return tuple(e.strip() for e in value.split(",")) if value.strip() else ()


def _unique(prefix: str, uuids: list[str]) -> str | None:
    found = [u for u in uuids if u.lower().startswith(prefix.lower())]
    return found[0] if len(found) == 1 else None


def _place(entry: str, gpus: list[GpuInfo], by_index: bool) -> Visible | None | bool:
    """The device ``entry`` names; None when it names one NVML cannot place (an index in CUDA's
    FASTEST_FIRST order among different models); False when it names none (CUDA stops reading there)."""
    if entry.isdigit():
        i = int(entry)
        if i >= len(gpus):
            return False
        return Visible(gpus[i].uuid, gpus[i].uuid) if by_index else None
    upper = entry.upper()
    if upper.startswith("MIG-GPU-"):  # legacy form MIG-GPU-<uuid>/<gpu instance>/<compute instance>
        parts = entry[len("MIG-") :].split("/")
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
            return False
        gpu = _unique(parts[0], [g.uuid for g in gpus])
        owner = next((g for g in gpus if g.uuid == gpu), None)
        mig = next(
            (m for m in (owner.migs if owner else ()) if (m.gpu_instance, m.compute_instance) ==
             (int(parts[1]), int(parts[2]))),
            None,
        )  # fmt: skip
        return Visible(mig.uuid, owner.uuid) if mig and owner else False
    if upper.startswith("MIG-"):
        owners = {m.uuid: g.uuid for g in gpus for m in g.migs}
        mig = _unique(entry, list(owners))
        return Visible(mig, owners[mig]) if mig else False
    if upper.startswith("GPU-"):
        gpu = _unique(entry, [g.uuid for g in gpus])
        return Visible(gpu, gpu) if gpu else False
    return False


def visible_devices(
    entries: tuple[str, ...] | None, gpus: list[GpuInfo], pci_order: bool
) -> list[Visible | None]:
    """The NVML device behind each CUDA device number, given the ``CUDA_VISIBLE_DEVICES`` entries
    (``parse_visible_devices``), NVML's GPUs and whether ``CUDA_DEVICE_ORDER=PCI_BUS_ID``. None marks a
    device that exists but NVML cannot place: an index under CUDA's default FASTEST_FIRST order on a machine
    with different GPU models (same models: CUDA breaks the tie by PCI bus, NVML's order)."""
    by_index = pci_order or len({g.name for g in gpus}) <= 1
    if entries is None:
        return [Visible(g.uuid, g.uuid) if by_index else None for g in gpus]
    out: list[Visible | None] = []
    for entry in entries:
        placed = _place(entry, gpus, by_index)
        if placed is False:
            break
        out.append(placed)
    return out


def _driver_uuid(ordinal: int) -> str | None:
    """The UUID hex digits CUDA's driver reports for device ``ordinal`` (it applies CUDA_VISIBLE_DEVICES
    and CUDA_DEVICE_ORDER itself), or None when the driver cannot say."""
    try:
        cu = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    dev = ctypes.c_int(0)
    raw = ctypes.create_string_buffer(16)
    if cu.cuInit(0) != 0 or cu.cuDeviceGet(ctypes.byref(dev), ctypes.c_int(ordinal)) != 0:
        return None
    if cu.cuDeviceGetUuid_v2(raw, dev) != 0:
        return None
    h = raw.raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@functools.cache
def _visible(ordinal: int, cuda_visible: str | None, order: str | None) -> Visible | None:
    gpus = nvml_gpus()
    placed = visible_devices(parse_visible_devices(cuda_visible), gpus, order == "PCI_BUS_ID")
    if ordinal >= len(placed):
        return None
    if placed[ordinal] is not None:
        return placed[ordinal]
    digits = _driver_uuid(ordinal)
    for g in gpus if digits else ():
        if g.uuid.lower().endswith(digits):
            return Visible(g.uuid, g.uuid)
        for m in g.migs:
            if m.uuid.lower().endswith(digits):
                return Visible(m.uuid, g.uuid)
    return None


def visible(ordinal: int = 0) -> Visible | None:
    """The NVML device behind CUDA device ``ordinal`` in this process, or None (no NVML, no such device,
    or one that cannot be placed)."""
    return _visible(ordinal, os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"))


def gpu_problem() -> str | None:
    """None when at least one NVIDIA GPU is visible to CUDA, else the reason."""
    lib = _nvml()
    if isinstance(lib, str):
        return lib
    gpus = nvml_gpus()
    if not gpus:
        return "no NVIDIA GPU visible"
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not visible_devices(parse_visible_devices(env), gpus, True):
        return f"no NVIDIA GPU visible to CUDA (CUDA_VISIBLE_DEVICES={env!r})"
    return None


def _handle(uuid: str) -> tuple[ctypes.CDLL, ctypes.c_void_p] | None:
    lib = _nvml()
    if isinstance(lib, str):
        return None
    handle = ctypes.c_void_p()
    if lib.nvmlDeviceGetHandleByUUID(uuid.encode(), ctypes.byref(handle)) != 0:
        return None
    return lib, handle


def device_memory_used(device: int = 0) -> int | None:
    """Bytes in use on CUDA device ``device`` (all processes; a MIG instance's own memory), or None."""
    v = visible(device)
    found = _handle(v.uuid) if v else None
    if found is None:
        return None
    lib, handle = found
    info = _MemoryInfo()
    if lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(info)) != 0:
        return None
    return int(info.used)


def _capability(uuid: str) -> tuple[int, int] | None:
    found = _handle(uuid)
    if found is None:
        return None
    lib, handle = found
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    if lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) != 0:
        return None
    return int(major.value), int(minor.value)


def compute_capability(device: int = 0) -> tuple[int, int] | None:
    """(major, minor) of CUDA device ``device``, or None without NVML or that device."""
    v = visible(device)
    return _capability(v.gpu_uuid) if v else None


def shared_compute_capability() -> tuple[int, int] | None:
    """The compute capability of every GPU CUDA can use here when they all have the same one, else None.
    Where a visible device cannot be placed, every GPU NVML sees counts."""
    gpus = nvml_gpus()
    placed = visible_devices(
        parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES")),
        gpus,
        os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID",
    )
    uuids = {v.gpu_uuid for v in placed if v} if placed and all(placed) else {g.uuid for g in gpus}
    ccs = {_capability(u) for u in uuids}
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
