"""Streams, device memory and copies for the TensorRT runner, through cuda-python (``cuda.bindings.runtime``).

cuda-bindings carries the CUDA runtime statically linked: it needs the driver (libcuda.so.1) and no
libcudart, wherever pip put TensorRT. (polygraphy's ctypes wrapper looks for libcudart on LD_LIBRARY_PATH,
/usr/local/cuda, /usr/lib and the CUDA 12 wheel folder, and misses the CUDA 13 wheel's nvidia/cu13/lib and
Debian's /usr/lib/x86_64-linux-gnu: on a driver-only machine it could not create a stream.)

CUDA errors become our typed errors where they happen: out of memory -> BudgetError, no usable driver or
device -> BackendUnavailable, anything else -> EngineError naming the call.
"""

from __future__ import annotations

import numpy as np

from trt_inpaint.errors import BackendUnavailable, BudgetError, EngineError, TrtInpaintError
from trt_inpaint.runtime.units import format_bytes

# cudaError_t names meaning "no usable GPU here" rather than a fault of the engine
NO_GPU_ERRORS = {
    "cudaErrorInsufficientDriver",
    "cudaErrorNoDevice",
    "cudaErrorInitializationError",
    "cudaErrorDevicesUnavailable",
    "cudaErrorInvalidDevice",
    "cudaErrorStubLibrary",
    "cudaErrorSystemDriverMismatch",
    "cudaErrorCompatNotSupportedOnDevice",
    "cudaErrorSystemNotReady",
    "cudaErrorCallRequiresNewerDriver",
    "cudaErrorUnsupportedPtxVersion",
}
OOM_ERROR = "cudaErrorMemoryAllocation"


def import_cudart():
    try:
        from cuda.bindings import runtime
    except ImportError as e:
        raise BackendUnavailable(
            f"cuda-python is not installed ({e}): pip install 'trt-inpaint[rtx]' (or '[trt]')"
        ) from e
    return runtime


def error_name(err) -> str:
    return getattr(err, "name", None) or f"cudaError {int(err)}"


def as_error(err, what: str) -> TrtInpaintError:
    """Our typed error for CUDA error ``err`` (a ``cudaError_t``) raised by ``what``."""
    rt = import_cudart()
    name = error_name(err)
    found, text = rt.cudaGetErrorString(err)
    text = text.decode() if found == rt.cudaError_t.cudaSuccess else name
    if name == OOM_ERROR:
        return BudgetError(f"out of GPU memory: {what} ({name})")
    if name in NO_GPU_ERRORS:
        return BackendUnavailable(f"tensorrt: no usable GPU ({what}: {name}: {text})")
    return EngineError(f"CUDA error in {what}: {name}: {text}")


def check(result, what: str):
    """The value(s) of a cuda.bindings call ``(err, *values)``; our typed error when err is not success."""
    rt = import_cudart()
    err, *values = result
    if err != rt.cudaError_t.cudaSuccess:
        raise as_error(err, what)
    return values[0] if len(values) == 1 else (tuple(values) or None)


def free_memory() -> tuple[int, int]:
    """(free, total) bytes of the current device."""
    return check(import_cudart().cudaMemGetInfo(), "cudaMemGetInfo")


class Stream:
    def __init__(self):
        self._rt = import_cudart()
        self._stream = check(self._rt.cudaStreamCreate(), "cudaStreamCreate")

    @property
    def ptr(self) -> int:
        return int(self._stream)

    def synchronize(self) -> None:
        check(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def free(self) -> None:
        if self._stream is not None:
            check(self._rt.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
            self._stream = None


class DeviceBuffer:
    """Device memory that grows on demand (never shrinks until ``free``); ``capacity`` bytes held."""

    def __init__(self, what: str):
        self._rt = import_cudart()
        self.what = what
        self.ptr = 0
        self.capacity = 0

    def ensure(self, nbytes: int) -> bool:
        """Hold at least ``nbytes``; True when the memory moved (a new pointer). BudgetError on OOM."""
        if nbytes <= self.capacity:
            return False
        self.free()
        self.ptr = int(
            check(self._rt.cudaMalloc(int(nbytes)), f"cudaMalloc of {format_bytes(nbytes)} for {self.what}")
        )
        self.capacity = int(nbytes)
        return True

    def copy_from(self, host: np.ndarray, stream: Stream) -> None:
        host = np.ascontiguousarray(host)
        self.ensure(host.nbytes)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(
            self._rt.cudaMemcpyAsync(self.ptr, host.ctypes.data, host.nbytes, kind, stream.ptr),
            f"copy of {self.what} to the GPU",
        )

    def copy_to(self, host: np.ndarray, stream: Stream) -> None:
        if not host.flags.c_contiguous or host.nbytes > self.capacity:
            raise ValueError(f"{self.what}: host array not contiguous or larger than the device buffer")
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(
            self._rt.cudaMemcpyAsync(host.ctypes.data, self.ptr, host.nbytes, kind, stream.ptr),
            f"copy of {self.what} from the GPU",
        )

    def free(self) -> None:
        if self.ptr:
            check(self._rt.cudaFree(self.ptr), f"cudaFree of {self.what}")
        self.ptr, self.capacity = 0, 0
