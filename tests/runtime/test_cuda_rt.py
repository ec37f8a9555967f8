"""The TensorRT runner's CUDA layer (cuda-python): errors mapped to ours, and real buffers where a GPU is.

cuda-bindings carries the CUDA runtime linked in, so here (no driver) its calls run for real and answer
cudaErrorInsufficientDriver; on a GPU machine (the GPU check runs this file) the same tests move real data.
"""

from __future__ import annotations

import numpy as np
import pytest

from trt_inpaint.errors import BackendUnavailable, BudgetError, EngineError
from trt_inpaint.runtime.backends import cuda_rt
from trt_inpaint.runtime.gpu import gpu_problem


def test_errors_map_to_our_types():
    rt = cuda_rt.import_cudart()
    oom = cuda_rt.as_error(rt.cudaError_t.cudaErrorMemoryAllocation, "cudaMalloc of 1 TiB")
    assert isinstance(oom, BudgetError) and "out of GPU memory" in str(oom) and "1 TiB" in str(oom)
    for name in ("cudaErrorInsufficientDriver", "cudaErrorNoDevice"):
        err = cuda_rt.as_error(getattr(rt.cudaError_t, name), "cudaStreamCreate")
        assert isinstance(err, BackendUnavailable) and "no usable GPU" in str(err) and name in str(err)
    fault = cuda_rt.as_error(rt.cudaError_t.cudaErrorIllegalAddress, "copy of output")
    assert isinstance(fault, EngineError) and "illegal" in str(fault).lower()
    assert cuda_rt.check((rt.cudaError_t.cudaSuccess, 42), "x") == 42


def test_stream_and_buffers():
    if gpu_problem():
        with pytest.raises(BackendUnavailable, match="no usable GPU"):
            cuda_rt.Stream()
        with pytest.raises(BackendUnavailable, match="no usable GPU"):
            cuda_rt.DeviceBuffer("test").ensure(1024)
        return
    stream = cuda_rt.Stream()  # pragma: no cover - GPU machine
    buf = cuda_rt.DeviceBuffer("test")
    try:
        host = np.arange(1 << 20, dtype=np.float32)
        buf.copy_from(host, stream)
        back = np.empty_like(host)
        buf.copy_to(back, stream)
        stream.synchronize()
        np.testing.assert_array_equal(back, host)
        assert buf.capacity == host.nbytes and not buf.ensure(16) and buf.ensure(host.nbytes * 2)
        free, total = cuda_rt.free_memory()
        with pytest.raises(BudgetError, match="out of GPU memory"):
            cuda_rt.DeviceBuffer("too big").ensure(total * 4)
    finally:
        buf.free()
        stream.free()
