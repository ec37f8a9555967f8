"""OpenVINO runner: a stage's fp32 ONNX compiled by OpenVINO for the CPU (or an Intel GPU), computing in fp32
or bf16 as asked. ``openvino`` is imported when a runner loads or a check asks for it, never at import.

Precision. ``INFERENCE_PRECISION_HINT`` is always set, because OpenVINO computes in bf16 by itself on CPUs
that have it unless told f32: fp32 -> f32, bf16 -> bf16 (CPUs with native bf16 only, ``runtime.cpu``),
fp16 -> f16 (GPU device only). The file is the fp32 ONNX whatever the precision: the precision is a hint
to the compiler, not another file. After compiling, the precision the compiled model reports must be the
one asked for, or the load fails.

Cache. Compiled models go to OpenVINO's ``CACHE_DIR``: ``<engines>/openvino-cache`` or, where that cannot be
written, ``openvino/`` in the user's cache folder (``runtime.footprints.default_cache_path``), and the
selection says so. OpenVINO keys a model compiled from a file by the file's path and size only (checked:
a rewritten ONNX of the same size loads the old compiled model), so each file version gets a subfolder of
its own, named by its path, size and modification time; older versions' subfolders are removed.

Footprint: as ONNX Runtime's on the CPU, the resident-memory growth over the load, never less than the
file's size; the first run at a new input shape, where OpenVINO prepares its kernels and lays out the
weights for them, adds what that run left held (the pool accounts the larger size after the run).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from trt_inpaint.errors import BackendUnavailable, BudgetError, EngineError
from trt_inpaint.export.spec import Precision, Stage, spec
from trt_inpaint.runtime import cpu, gpu
from trt_inpaint.runtime.backends.base import Backend, Runner
from trt_inpaint.runtime.backends.onnxruntime import model_bytes

INSTALL_HINT = "pip install 'trt-inpaint[openvino]'"
CACHE_FOLDER = "openvino-cache"
OOM_WORDS = ("bad_alloc", "out of memory", "failed to allocate", "cannot allocate")


class OpenVinoDevice(str, enum.Enum):
    """Where OpenVINO runs the stages: the CPU, or an Intel GPU (integrated or Arc; not NVIDIA)."""

    CPU = "CPU"
    GPU = "GPU"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value):
        return cls.__members__.get(str(value).upper())


# the hint per precision (OpenVINO's element type names), and where each may run
HINTS = {Precision.FP32: "f32", Precision.BF16: "bf16", Precision.FP16: "f16"}
PRECISIONS = {
    OpenVinoDevice.CPU: (Precision.BF16, Precision.FP32),  # in order of preference, where native
    OpenVinoDevice.GPU: (Precision.FP16, Precision.FP32),
}
CAPABILITY = {Precision.BF16: "BF16", Precision.FP16: "FP16"}  # OPTIMIZATION_CAPABILITIES names


def import_openvino():
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailable(f"openvino is not installed ({e}): {INSTALL_HINT}") from e
    return openvino


@functools.cache
def core():
    """The process's one ``openvino.Core`` (it is thread-safe and holds the device plugins)."""
    return import_openvino().Core()


def _one_line(e: BaseException) -> str:
    return (" ".join(str(e).split()) or type(e).__name__)[:300]


def device_problem(device: OpenVinoDevice = OpenVinoDevice.CPU) -> str | None:
    """None when OpenVINO is installed and sees ``device``, else why not."""
    try:
        devices = list(core().available_devices)
    except BackendUnavailable as e:
        return str(e)
    except Exception as e:  # openvino's own exceptions while loading its plugins
        return f"openvino cannot list its devices: {_one_line(e)}"
    if not any(d.split(".")[0] == device.value for d in devices):
        return f"OpenVINO sees no {device} device here (devices: {', '.join(devices) or 'none'})"
    return None


@functools.cache
def capabilities(device: OpenVinoDevice = OpenVinoDevice.CPU) -> tuple[str, ...] | None:
    """The device's ``OPTIMIZATION_CAPABILITIES`` as OpenVINO reports them; None where it cannot say."""
    if device_problem(device):
        return None
    try:
        return tuple(str(c) for c in core().get_property(device.value, "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # openvino's own exceptions: the property is optional for a plugin
        return None


@functools.cache
def cpu_bf16() -> cpu.Bf16Verdict:
    """Whether this CPU computes bf16 natively, from /proc/cpuinfo and (where installed) OpenVINO."""
    return cpu.native_bf16(cpu.cpu_flags(), capabilities(OpenVinoDevice.CPU))


def precision_problem(
    precision: Precision, device: OpenVinoDevice, bf16: cpu.Bf16Verdict | None = None,
    caps: tuple[str, ...] | None = None,
) -> str | None:  # fmt: skip
    """Why OpenVINO cannot compute in ``precision`` on ``device`` here (None: it can). ``bf16`` and ``caps``
    default to this machine's (tests pass others)."""
    if precision not in PRECISIONS[device]:
        allowed = " or ".join(p.value for p in reversed(PRECISIONS[device]))
        return f"OpenVINO on {device} runs {allowed}, not {precision}"
    if precision is Precision.FP32:
        return None
    if device is OpenVinoDevice.CPU:
        v = bf16 or cpu_bf16()
        return None if v.native else f"bf16 is not native on this CPU ({v.why}): it would not compute in bf16"
    caps = capabilities(device) if caps is None else caps
    if caps is not None and CAPABILITY[precision] in caps:
        return None
    return f"the {device} device does not list {CAPABILITY[precision]} among its capabilities ({caps})"


def precision_reason(
    precision: Precision, device: OpenVinoDevice, asked: bool, bf16: cpu.Bf16Verdict | None = None
) -> str:
    """Why the selection computes in ``precision`` (said in the log and the --json summary)."""
    if device is OpenVinoDevice.CPU:
        v = bf16 or cpu_bf16()
        native = f"this CPU has native bf16 ({v.why})" if v.native else f"no native bf16 here ({v.why})"
        if asked:
            return f"{precision} as asked; {native}"
        if precision is Precision.BF16:
            return f"{native}; --precision fp32 computes in fp32"
        return f"{native}, so bf16 is not used"
    order = ", ".join(p.value for p in PRECISIONS[device])
    return f"{precision} as asked" if asked else f"the first of {order} that the {device} device lists"


# ---- the compiled-model cache ------------------------------------------------------------------------


def _writable_problem(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def cache_root(engines: Path) -> tuple[Path | None, str | None]:
    """(folder, note): ``<engines>/openvino-cache`` where it can be written, else the user's cache folder's
    ``openvino/`` and a note saying why; (None, note) when neither can be written (no cache)."""
    from trt_inpaint.runtime.footprints import default_cache_path

    local = Path(engines) / CACHE_FOLDER
    problem = _writable_problem(local)
    if problem is None:
        return local, None
    user = default_cache_path().parent / "openvino"
    second = _writable_problem(user)
    if second is None:
        return user, f"compiled models cached in {user} ({local} cannot be written: {problem})"
    return None, f"compiled models not cached ({local}: {problem}; {user}: {second})"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir_for(root: Path, model: Path) -> Path:
    """``root``'s subfolder for this version of ``model`` (path, size, modification time), made, with the
    subfolders of its other versions removed (OpenVINO would take a same-sized rewrite for the old file)."""
    path = model.resolve()
    st = path.stat()
    prefix = f"{path.stem}-{_digest(str(path))}-"
    folder = root / (prefix + _digest(f"{st.st_size}|{st.st_mtime_ns}"))
    for old in root.glob(prefix + "*"):
        if old != folder and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- the runner -------------------------------------------------------------------------------------


class OpenVinoRunner(Runner):
    """One stage compiled by OpenVINO from ``path`` (an fp32 ONNX) for ``device`` with ``precision``."""

    backend = Backend.OPENVINO

    def __init__(
        self,
        stage: Stage,
        path: str | Path,
        *,
        precision: Precision = Precision.FP32,
        device: OpenVinoDevice | str = OpenVinoDevice.CPU,
        threads: int | None = None,
        cache_root: Path | None = None,
    ):
        super().__init__(Stage(stage).value)
        self.stage = Stage(stage)
        self.path = Path(path)
        self.precision = Precision(precision)
        self.device = OpenVinoDevice(device)
        self.threads = threads
        self.cache_root = cache_root
        self.variant = f"{self.device.value.lower()}-{self.precision.value}"
        self.loaded_from_cache: bool | None = None  # set at load: the compiled model came from the cache
        self._compiled = None
        self._request = None
        self._outputs: dict[str, object] = {}
        self._shapes: set[tuple] = set()

    def estimate_footprint(self) -> int:
        """Before loading: the weights' size (the fp32 file's)."""
        return model_bytes(self.path)

    def _config(self) -> dict:
        config = {"INFERENCE_PRECISION_HINT": HINTS[self.precision], "PERFORMANCE_HINT": "LATENCY"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        if self.cache_root is not None:
            try:
                config["CACHE_DIR"] = str(cache_dir_for(self.cache_root, self.path))
            except OSError:
                pass  # a cache folder that cannot be made: compile without one
        return config

    def _load(self) -> None:
        problem = device_problem(self.device)
        if problem:
            raise BackendUnavailable(f"openvino: {problem}")
        if not self.path.is_file():
            raise EngineError("ONNX model not found", self.path)
        problem = precision_problem(self.precision, self.device)
        if problem:
            raise BackendUnavailable(f"openvino: {problem}")
        before = gpu.process_rss()
        try:
            compiled = core().compile_model(str(self.path), self.device.value, self._config())
        except Exception as e:  # openvino's RuntimeError / own Exception for bad or unreadable models
            self._raise_oom(e)
            text = _one_line(e).replace(str(self.path), "the file")
            raise EngineError(
                f"OpenVINO cannot compile the ONNX model (corrupt or not ONNX): {text}", self.path
            ) from e
        self._check(compiled)
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._outputs = {n: compiled.output(n) for n in spec(self.stage).output_names}
        self._shapes = set()
        self.footprint = max(gpu.process_rss() - before, model_bytes(self.path))

    def _check(self, compiled) -> None:
        """The model's tensors must be the stage's, and it must compute in the precision asked for."""
        s = spec(self.stage)
        got_in = {n for i in compiled.inputs for n in i.get_names()}
        got_out = {n for o in compiled.outputs for n in o.get_names()}
        if (
            not set(s.input_names) <= got_in
            or len(compiled.inputs) != len(s.inputs)
            or not (set(s.output_names) <= got_out)
        ):
            raise EngineError(
                f"model inputs {sorted(got_in)} / outputs {sorted(got_out)} do not match stage {s.name} "
                f"({list(s.input_names)} -> {list(s.output_names)}): rebuild the engines",
                self.path,
            )
        got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if got != HINTS[self.precision]:
            raise BackendUnavailable(
                f"openvino: stage {s.name} was asked to compute in {HINTS[self.precision]} but OpenVINO "
                f"compiled it for {got} on {self.device}"
            )
        try:
            self.loaded_from_cache = bool(compiled.get_property("LOADED_FROM_CACHE"))
        except Exception:  # a plugin that does not report it
            self.loaded_from_cache = None

    def _raise_oom(self, e: Exception) -> None:
        text = _one_line(e)
        if any(w in text.lower() for w in OOM_WORDS):
            raise BudgetError(f"stage {self.stage.value}: out of memory in OpenVINO ({text[:200]})") from e

    @property
    def compiled_precision(self) -> str | None:
        """The inference precision the compiled model reports ("bf16", "f32"); None while unloaded."""
        if self._compiled is None:
            return None
        return self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = spec(self.stage)
        feeds = {n: np.ascontiguousarray(feeds[n], dtype=np.float32) for n in s.input_names}
        shapes = tuple(v.shape for v in feeds.values())
        first = shapes not in self._shapes
        before = gpu.process_rss() if first else 0
        try:
            result = self._request.infer(feeds)
        except Exception as e:  # openvino's own exceptions
            self._raise_oom(e)
            raise
        out = {n: np.array(result[port], dtype=np.float32, copy=True) for n, port in self._outputs.items()}
        if first:  # kernels and weight layouts for this shape stay with the compiled model
            self._shapes.add(shapes)
            held = gpu.process_rss() - before - sum(a.nbytes for a in out.values())
            self.footprint += max(0, held)
        return out

    def _unload(self) -> None:
        self._request = None
        self._compiled = None
        self._outputs = {}
        self._shapes = set()
