"""TensorRT runner: serialized engines from ``tensorrt`` (full TensorRT) or ``tensorrt_rtx``.

Device buffers and the stream come from polygraphy's CUDA helpers (ctypes over the CUDA runtime), not torch.
Every heavy import happens in ``load``. Footprint = serialized engine size + ``device_memory_size_v2``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from trt_inpaint.errors import BackendUnavailable, EngineError
from trt_inpaint.export.spec import Stage, spec
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.backends.base import Backend, Runner

MODULES = ("tensorrt", "tensorrt_rtx")


def import_trt(preferred: str | None = None):
    """The TensorRT module (``preferred`` first, then the others); BackendUnavailable if none imports."""
    order = [preferred] if preferred else []
    order += [m for m in MODULES if m not in order]
    problems = []
    for name in order:
        try:
            return importlib.import_module(name)
        except ImportError as e:
            problems.append(f"{name}: {e}")
    raise BackendUnavailable(f"no TensorRT module imports ({'; '.join(problems)})")


def import_cuda():
    try:
        from polygraphy import cuda
    except ImportError as e:
        raise BackendUnavailable(f"polygraphy (for CUDA buffers) is not installed ({e})") from e
    return cuda


def trt_problem() -> str | None:
    """None when the TensorRT backend can run here, else why not (the GPU is checked first: cheap)."""
    problem = gpu.gpu_problem()
    if problem:
        return problem
    try:
        import_trt()
        import_cuda()
    except BackendUnavailable as e:
        return str(e)
    return None


def _make_logger(trt):
    class _Logger(trt.ILogger):
        """Keeps the last error so a failed deserialization can say why in one line."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity <= trt.ILogger.Severity.ERROR:
                self.errors.append(" ".join(str(msg).split()))

    return _Logger()


class TrtRunner(Runner):
    """One stage as a deserialized TensorRT engine with its execution context."""

    backend = Backend.TENSORRT

    def __init__(
        self,
        stage: Stage,
        path: str | Path,
        *,
        module: str | None = None,
        expect_version: str | None = None,
        targets: tuple[str, ...] | None = None,
    ):
        """``targets``: the compute capabilities a TensorRT-RTX engine was built for (from the manifest),
        checked against this GPU before deserializing; None: no check."""
        super().__init__(Stage(stage).value)
        self.stage = Stage(stage)
        self.path = Path(path)
        self.module = module
        self.expect_version = expect_version
        self.targets = targets
        self._engine = self._context = self._stream = self._runtime = None
        self._buffers: dict = {}

    def estimate_footprint(self) -> int:
        """Before loading: the engine file's size (activations are known only after deserializing)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def _load(self) -> None:
        trt = import_trt(self.module)
        cuda = import_cuda()
        if not self.path.is_file():
            raise EngineError("engine not found", self.path)
        if self.expect_version and self.expect_version != trt.__version__:
            raise EngineError(
                f"engine built with {trt.__name__} {self.expect_version}, "
                f"this is {trt.__version__}: rebuild it",
                self.path,
            )
        cc = gpu.shared_compute_capability() if self.targets else None
        problem = gpu.target_problem(list(self.targets), cc) if self.targets and cc else None
        if problem:
            raise EngineError(problem, self.path)
        data = self.path.read_bytes()
        logger = _make_logger(trt)
        self._runtime = trt.Runtime(logger)
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            about_file = [e for e in logger.errors if ": serialization" in e.lower() or "magic" in e.lower()]
            no_gpu = [e for e in logger.errors if "cudaerror" in e.lower() or "cuda runtime" in e.lower()]
            why = (about_file or logger.errors or ["unknown reason"])[0]
            if no_gpu and not about_file:
                why = no_gpu[0]
                raise BackendUnavailable(f"tensorrt: no usable GPU ({why[:200]})")
            raise EngineError(
                "cannot deserialize the engine (corrupt, or built for another GPU or "
                f"{trt.__name__} version): "
                f"{why[:300]}",
                self.path,
            )
        s = spec(self.stage)
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        if names != set(s.input_names) | set(s.output_names):
            raise EngineError(
                f"engine tensors {sorted(names)} do not match stage {s.name}: rebuild it", self.path
            )
        not_fp32 = [n for n in sorted(names) if engine.get_tensor_dtype(n) != trt.float32]
        if not_fp32:
            raise EngineError(f"engine I/O {', '.join(not_fp32)} is not float32: rebuild it", self.path)
        try:
            self._stream = cuda.Stream()
        except Exception as e:
            raise BackendUnavailable(f"tensorrt: cannot create a CUDA stream ({e})") from e
        self._engine = engine
        self._context = engine.create_execution_context()
        self.footprint = len(data) + int(engine.device_memory_size_v2)

    def _buffer(self, name: str, shape: tuple[int, ...]):
        cuda = import_cuda()
        buf = self._buffers.get(name)
        if buf is None:
            buf = self._buffers[name] = cuda.DeviceArray(shape=shape, dtype=np.float32)
        else:
            buf.resize(shape)
        return buf

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = spec(self.stage)
        ctx = self._context
        for name in s.input_names:
            arr = np.ascontiguousarray(feeds[name], dtype=np.float32)
            if not ctx.set_input_shape(name, arr.shape):
                raise EngineError(f"input {name} {arr.shape} is outside the engine profile", self.path)
            buf = self._buffer(name, arr.shape)
            buf.copy_from(arr, self._stream)
            ctx.set_tensor_address(name, buf.ptr)
        outputs = {}
        for name in s.output_names:
            shape = tuple(ctx.get_tensor_shape(name))
            buf = self._buffer(name, shape)
            ctx.set_tensor_address(name, buf.ptr)
            outputs[name] = np.empty(shape, np.float32)
        if not ctx.execute_async_v3(self._stream.ptr):
            raise EngineError(f"engine of stage {s.name} failed to execute", self.path)
        for name, host in outputs.items():
            self._buffers[name].copy_to(host, self._stream)
        self._stream.synchronize()
        return outputs

    def _unload(self) -> None:
        for buf in self._buffers.values():
            buf.free()
        self._buffers = {}
        if self._stream is not None:
            self._stream.free()
        self._context = self._engine = self._stream = self._runtime = None
