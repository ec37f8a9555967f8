"""Resident memory of this process over time, with labelled events, and device memory where a GPU exists.

``RssSampler`` samples RSS from a background thread (the inference libraries release the GIL while they
compute). On Linux the kernel's own high-water mark (VmHWM) is reset at the start of each window and read at
its end, so a window's peak is exact even between samples.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psutil

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def hwm_bytes() -> int | None:
    """The kernel's peak RSS of this process since start or the last reset (Linux), else None."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0). False where not possible."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class Event:
    t: float  # seconds since the sampler started
    label: str
    kind: str = "mark"  # "mark", "load", "unload" (swap markers in the plot), "phase"

    def to_dict(self) -> dict:
        return {"t": round(self.t, 4), "label": self.label, "kind": self.kind}


@dataclass
class Window:
    """Peak memory between ``RssSampler.window_start`` and ``window_end``."""

    label: str
    start_rss: int
    peak_rss: int = 0
    t0: float = 0.0
    t1: float = 0.0
    device_peak: int | None = None

    @property
    def delta(self) -> int:
        return max(0, self.peak_rss - self.start_rss)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "start_rss": self.start_rss,
            "peak_rss": self.peak_rss,
            "delta": self.delta,
            "t0": round(self.t0, 4),
            "t1": round(self.t1, 4),
            "device_peak": self.device_peak,
        }


@dataclass
class RssSampler:
    """Samples RSS every ``interval`` s into ``timeline`` [(t, bytes)]; marks events; measures windows."""

    interval: float = 0.02
    device: DeviceMemory | None = None
    timeline: list[tuple[float, int]] = field(default_factory=list)
    device_timeline: list[tuple[float, int]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _t0: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _proc: psutil.Process | None = None

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def _sample(self) -> None:
        assert self._proc is not None
        t = self.now()
        self.timeline.append((t, self._proc.memory_info().rss))
        if self.device is not None:
            used = self.device.used()
            if used is not None:
                self.device_timeline.append((t, used))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> RssSampler:
        self._proc = psutil.Process(os.getpid())
        self._t0 = time.perf_counter()
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._sample()

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def mark(self, label: str, kind: str = "mark") -> None:
        self.events.append(Event(self.now(), label, kind))

    @property
    def peak(self) -> int:
        """Peak RSS of the whole process life (kernel counter where present) or of the samples."""
        sampled = max((b for _, b in self.timeline), default=0)
        return max(sampled, _ru_maxrss())

    def window_start(self, label: str) -> Window:
        reset_hwm()
        return Window(label, rss_bytes(), t0=self.now())

    def window_end(self, w: Window) -> Window:
        w.t1 = self.now()
        sampled = max((b for t, b in self.timeline if w.t0 <= t <= w.t1), default=0)
        w.peak_rss = max(sampled, hwm_bytes() or 0, rss_bytes())
        if self.device is not None:
            w.device_peak = self.device.peak_and_reset()
        return w

    def to_dict(self, max_points: int = 4000) -> dict:
        step = max(1, len(self.timeline) // max_points)
        return {
            "interval_s": self.interval,
            "timeline": [[round(t, 3), b] for t, b in self.timeline[::step]],
            "device_timeline": [[round(t, 3), b] for t, b in self.device_timeline[::step]],
            "events": [e.to_dict() for e in self.events],
        }


def _ru_maxrss() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    except (ImportError, OSError):
        return 0


class DeviceMemory:
    """GPU memory: NVML's used bytes of device ``index`` (all processes, through the runtime's ctypes NVML),
    else the CUDA caching allocator's reserved bytes when this process has torch on CUDA."""

    def __init__(self, index: int = 0):
        from trt_inpaint.runtime.gpu import device_memory_used

        self.index = index
        self._nvml = device_memory_used
        self._peak = 0

    @property
    def available(self) -> bool:
        return self._nvml(self.index) is not None or _torch_cuda()

    def used(self) -> int | None:
        val = self._nvml(self.index)
        if val is None and _torch_cuda():
            import torch

            val = int(torch.cuda.memory_reserved(self.index))
        if val is not None:
            self._peak = max(self._peak, val)
        return val

    def peak_and_reset(self) -> int | None:
        now = self.used()
        if now is None:
            return None
        peak = self._peak
        if _torch_cuda():
            import torch

            peak = max(peak, int(torch.cuda.max_memory_reserved(self.index)))
            torch.cuda.reset_peak_memory_stats(self.index)
        self._peak = now
        return peak


def _torch_cuda() -> bool:
    import sys

    torch = sys.modules.get("torch")  # never import torch just to ask
    return bool(torch is not None and torch.cuda.is_available())


def device_memory() -> DeviceMemory | None:
    """A DeviceMemory where a GPU is visible, else None."""
    d = DeviceMemory()
    return d if d.available else None
