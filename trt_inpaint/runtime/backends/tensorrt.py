"""TensorRT runner: serialized engines from ``tensorrt`` (full TensorRT) or ``tensorrt_rtx``.

Streams, device buffers and copies come from cuda-python (``cuda_rt``), not torch. Every heavy import
happens in ``load``.

Activation memory is user-managed: the context gets exactly what the shapes of the current call need
(``update_device_memory_size_for_shapes``), not the STATIC allocation sized for the profile's maximum
(batch 4 at 2048x2048), so a 512x512 batch-1 run is charged for what it uses. Footprint = serialized engine
size + activations + I/O buffers of a batch-1 run at the engine's optimum shape (measured at load with a
warm-up run); a larger call grows the buffer and ``footprint`` with it.

TensorRT-RTX compiles kernels for the GPU at run time; its runtime cache keeps them next to the engine
(``<engine>.sm<CC>.runtime-cache``), read at load and written back at load and unload, so later loads
skip the compilation. A cache from another GPU, driver or TensorRT-RTX version is rejected by TensorRT-RTX
and rewritten.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path

import numpy as np

from trt_inpaint import atomic
from trt_inpaint.errors import BackendUnavailable, BudgetError, EngineError, TrtInpaintError
from trt_inpaint.export.spec import Stage, spec
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.backends import cuda_rt
from trt_inpaint.runtime.backends.base import Backend, Runner

MODULES = ("tensorrt", "tensorrt_rtx")
OOM_WORDS = (
    "out of memory",
    "outofmemory",
    "allocation failed",
    "failed to allocate",
    "cudaerrormemoryallocation",
)
RUNTIME_CACHE_SUFFIX = ".runtime-cache"


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


def trt_problem() -> str | None:
    """None when the TensorRT backend can run here, else why not (the GPU is checked first: cheap)."""
    problem = gpu.gpu_problem()
    if problem:
        return problem
    try:
        import_trt()
        cuda_rt.import_cudart()
    except BackendUnavailable as e:
        return str(e)
    return None


def runtime_cache_path(engine: Path, cc: tuple[int, int] | None) -> Path:
    """Where the TensorRT-RTX runtime cache of ``engine`` lives on a GPU of compute capability ``cc``."""
    tag = f".sm{cc[0]}{cc[1]}" if cc else ""
    return engine.with_name(f"{engine.name}{tag}{RUNTIME_CACHE_SUFFIX}")


def _make_logger(trt):
    class _Logger(trt.ILogger):
        """Keeps the errors so a failed call can say why in one line."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity <= trt.ILogger.Severity.ERROR:
                self.errors.append(" ".join(str(msg).split()))

    return _Logger()


def is_oom(messages: list[str]) -> bool:
    return any(w in m.lower() for m in messages for w in OOM_WORDS)


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
        self._engine = self._context = self._stream = self._runtime = self._logger = None
        self._rtcache = self._rtcache_path = None
        self._activations: cuda_rt.DeviceBuffer | None = None
        self._buffers: dict[str, cuda_rt.DeviceBuffer] = {}
        self._engine_bytes = 0

    def estimate_footprint(self) -> int:
        """Before loading: the engine file's size (activations are known only after deserializing)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def _load(self) -> None:
        trt = import_trt(self.module)
        cuda_rt.import_cudart()
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
        self._logger = logger = _make_logger(trt)
        self._runtime = trt.Runtime(logger)
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            about_file = [e for e in logger.errors if ": serialization" in e.lower() or "magic" in e.lower()]
            no_gpu = [e for e in logger.errors if "cudaerror" in e.lower() or "cuda runtime" in e.lower()]
            why = (about_file or logger.errors or ["unknown reason"])[0]
            if is_oom(logger.errors):
                raise BudgetError(
                    f"stage {self.stage.value}: out of GPU memory loading the engine ({why[:200]})"
                )
            if no_gpu and not about_file:
                raise BackendUnavailable(f"tensorrt: no usable GPU ({no_gpu[0][:200]})")
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
        self._engine, self._engine_bytes = engine, len(data)
        try:
            self._stream = cuda_rt.Stream()
            self._context = self._create_context(trt, engine)
            self._activations = cuda_rt.DeviceBuffer(f"stage {self.stage.value} activations")
            self._run(self._warmup_feeds())
        except TrtInpaintError:
            self._unload()
            raise
        except Exception as e:  # TensorRT's own exceptions (its bindings raise RuntimeError, TypeError)
            self._unload()
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise EngineError(f"cannot prepare the engine for a run: {first}", self.path) from e
        except BaseException:  # KeyboardInterrupt: free the GPU memory, then go
            self._unload()
            raise
        self._save_runtime_cache()

    def _create_context(self, trt, engine):
        """An execution context with user-managed activation memory (and, for TensorRT-RTX, the runtime
        cache); BudgetError when TensorRT says the GPU's memory ran out, EngineError otherwise."""
        strategy = trt.ExecutionContextAllocationStrategy.USER_MANAGED
        config = engine.create_runtime_config() if hasattr(engine, "create_runtime_config") else None
        if config is not None and hasattr(config, "create_runtime_cache"):
            config.set_execution_context_allocation_strategy(strategy)
            self._rtcache = config.create_runtime_cache()
            self._rtcache_path = runtime_cache_path(self.path, gpu.compute_capability(0))
            if self._rtcache_path.is_file():
                with contextlib.suppress(OSError):
                    self._rtcache.deserialize(self._rtcache_path.read_bytes())  # False: stale, rewritten
            config.set_runtime_cache(self._rtcache)
            context = engine.create_execution_context(config)
        else:
            context = engine.create_execution_context(strategy)
        if context is None:
            why = (self._logger.errors or ["no reason given"])[-1]
            if is_oom(self._logger.errors):
                what = f"stage {self.stage.value}: out of GPU memory creating its execution context"
                raise BudgetError(f"{what} ({why[:180]})")
            raise EngineError(f"cannot create an execution context: {why[:300]}", self.path)
        return context

    def _save_runtime_cache(self) -> None:
        if self._rtcache is not None and self._rtcache_path is not None:
            blob = self._rtcache.serialize()
            if blob is not None:
                with contextlib.suppress(OSError):  # a read-only folder: the next load compiles again
                    atomic.write_bytes(self._rtcache_path, memoryview(blob))

    def _warmup_feeds(self) -> dict[str, np.ndarray]:
        """Zeros at the engine's optimum shape (profile 0), batch 1."""
        feeds = {}
        for name in spec(self.stage).input_names:
            opt = tuple(int(d) for d in self._engine.get_tensor_profile_shape(name, 0)[1])
            feeds[name] = np.zeros((1, *opt[1:]), np.float32)
        return feeds

    def _buffer(self, name: str, nbytes: int) -> cuda_rt.DeviceBuffer:
        buf = self._buffers.get(name)
        if buf is None:
            buf = self._buffers[name] = cuda_rt.DeviceBuffer(f"tensor {name} of stage {self.stage.value}")
        buf.ensure(nbytes)
        return buf

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = spec(self.stage)
        ctx = self._context
        for name in s.input_names:
            arr = np.ascontiguousarray(feeds[name], dtype=np.float32)
            if not ctx.set_input_shape(name, arr.shape):
                raise EngineError(f"input {name} {arr.shape} is outside the engine profile", self.path)
            buf = self._buffer(name, arr.nbytes)
            buf.copy_from(arr, self._stream)
            ctx.set_tensor_address(name, buf.ptr)
        # activation memory for these shapes (user-managed): grow when a larger call needs more
        self._activations.ensure(max(1, int(ctx.update_device_memory_size_for_shapes())))
        ctx.set_device_memory(self._activations.ptr, self._activations.capacity)
        outputs = {}
        for name in s.output_names:
            shape = tuple(ctx.get_tensor_shape(name))
            host = np.empty(shape, np.float32)
            ctx.set_tensor_address(name, self._buffer(name, host.nbytes).ptr)
            outputs[name] = host
        self.footprint = max(self.footprint, self._held())
        if not ctx.execute_async_v3(self._stream.ptr):
            why = (self._logger.errors or ["no reason given"])[-1]
            if is_oom(self._logger.errors):
                raise BudgetError(f"stage {s.name}: out of GPU memory running the engine ({why[:200]})")
            raise EngineError(f"engine of stage {s.name} failed to execute: {why[:300]}", self.path)
        for name, host in outputs.items():
            self._buffers[name].copy_to(host, self._stream)
        self._stream.synchronize()
        return outputs

    def _held(self) -> int:
        """Device bytes this stage holds: the engine, the activations and the I/O buffers."""
        held = self._engine_bytes + (self._activations.capacity if self._activations else 0)
        return held + sum(b.capacity for b in self._buffers.values())

    def _unload(self) -> None:
        with contextlib.suppress(Exception):  # a cache that cannot be written is not an error
            if self._context is not None:
                self._save_runtime_cache()
        self._context = None  # before the memory it uses goes
        for buf in [*self._buffers.values(), *([self._activations] if self._activations else [])]:
            buf.free()
        self._buffers, self._activations = {}, None
        if self._stream is not None:
            self._stream.free()
        self._engine = self._stream = self._runtime = self._rtcache = None
