"""ONNX Runtime runners: CPU execution provider, and CUDA execution provider with IO binding.

Footprint: CUDA, the growth of device memory over load plus one warm-up run; CPU, the growth of resident
memory over load, never less than the model file's size (a re-load into memory the allocator kept shows
little growth though the weights are resident again).

CUDA is trusted only when a session really got it: ``get_available_providers()`` lists CUDA for any
onnxruntime-gpu build, and ONNX Runtime falls back to the CPU silently when cuDNN or cuBLAS do not load.
So ``preload_dlls()`` runs first (it loads the CUDA libraries of the nvidia-* wheels that
``onnxruntime-gpu[cuda,cudnn]`` brings), and a session whose first provider is not CUDA is
BackendUnavailable, naming the library that did not load.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_inpaint.errors import BackendUnavailable, BudgetError, EngineError
from trt_inpaint.export.spec import Role, Stage, random_feeds, spec
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.backends.base import Backend, Runner

CUDA_EP = "CUDAExecutionProvider"
GPU_HINT = "pip install 'trt-inpaint[gpu]'"
INSTALL_HINT = f"pip install 'trt-inpaint[cpu]' (or {GPU_HINT} for the CUDA provider)"
OOM_WORDS = ("out of memory", "failed to allocate", "cudaerrormemoryallocation")


def import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailable(f"onnxruntime is not installed ({e}): {INSTALL_HINT}") from e
    return onnxruntime


@dataclass(frozen=True)
class OrtDistribution:
    name: str  # "onnxruntime", "onnxruntime-gpu", ...
    version: str
    folder: Path  # the folder holding its .dist-info (and its onnxruntime/ package)


def ort_distributions(path: list[str] | None = None) -> list[OrtDistribution]:
    """Every installed distribution that provides the ``onnxruntime`` package, by its metadata, searched on
    ``path`` (default ``sys.path``)."""
    from importlib.metadata import distributions

    found: dict[tuple[str, Path], OrtDistribution] = {}
    for dist in distributions(path=list(sys.path if path is None else path)):
        name = (dist.metadata["Name"] or "").lower()
        if name != "onnxruntime" and not name.startswith("onnxruntime-"):
            continue
        top = (dist.read_text("top_level.txt") or "").split()
        files = dist.files or []
        if "onnxruntime" not in top and not any(f.parts[:1] == ("onnxruntime",) for f in files):
            continue  # e.g. onnxruntime-genai: another package
        folder = Path(str(dist.locate_file(""))).resolve()
        found.setdefault((name, folder), OrtDistribution(name, dist.version, folder))
    return list(found.values())


def install_problem(path: list[str] | None = None) -> str | None:
    """None when one ONNX Runtime is installed (or the one imported is the CUDA build), else one line
    with the fix. Two builds in one folder share ``onnxruntime/`` and overwrite each other's files (the
    CUDA provider can vanish: microsoft/onnxruntime#26996); in two folders, the one earlier on the path is
    imported. Call at start-up (the registry's ort-cuda check does, through ``cuda_problem``)."""
    search = list(sys.path if path is None else path)
    dists = ort_distributions(search)
    if len(dists) < 2:
        return None
    names = " ".join(sorted({d.name for d in dists}))
    fix = f"pip uninstall -y {names} && pip install 'trt-inpaint[gpu]' (or 'trt-inpaint[cpu]')"
    by_folder: dict[Path, list[OrtDistribution]] = {}
    for d in dists:
        by_folder.setdefault(d.folder, []).append(d)
    for folder, same in by_folder.items():
        if len(same) > 1:
            both = " and ".join(f"{d.name} {d.version}" for d in sorted(same, key=lambda d: d.name))
            return (
                f"{both} are both installed in {folder} and overwrite each other's onnxruntime/ files "
                f"(the CUDA provider can vanish, microsoft/onnxruntime#26996): {fix}"
            )
    order = {}
    for i, entry in enumerate(search):
        with contextlib.suppress(OSError, ValueError):
            order.setdefault(Path(entry or ".").resolve(), i)
    first = min(dists, key=lambda d: order.get(d.folder, len(search)))
    gpu_builds = [d for d in dists if d.name == "onnxruntime-gpu"]
    if first.name != "onnxruntime-gpu" and gpu_builds:
        return (
            f"{first.name} {first.version} in {first.folder} comes before {gpu_builds[0].name} "
            f"{gpu_builds[0].version} in {gpu_builds[0].folder} on the module path, so the build without "
            f"CUDA is imported: pip uninstall -y {first.name}"
        )
    return None


@functools.cache
def preload_failures() -> tuple[str, ...]:
    """Run ``onnxruntime.preload_dlls()`` once (onnxruntime-gpu >= 1.21; it loads CUDA and cuDNN from the
    nvidia-* wheels before the first CUDA session) and return the libraries it reported it could not load.
    It prints its findings; they are captured so that ``--json`` output stays clean."""
    ort = import_ort()
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return ()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            preload()
    except Exception as e:  # its own RuntimeError for a bad directory, OSError from ctypes
        return (f"preload_dlls: {e}",)
    return tuple(
        line[len("Failed to load ") :].strip() for line in out.getvalue().splitlines()
        if line.startswith("Failed to load ")
    )  # fmt: skip


def dlopen_problem(path: str | Path) -> str | None:
    """None when the shared library at ``path`` loads, else the loader's message (for a missing
    dependency it names that library: ``libcudnn.so.9: cannot open shared object file ...``)."""
    try:
        ctypes.CDLL(str(path))
    except OSError as e:
        return " ".join(str(e).split()) or f"{path} does not load"
    return None


def cuda_fallback_reason(ort) -> str:
    """Why a session asked for CUDA got another provider: no CUDA build, a double install, or the CUDA
    provider library (or a library it needs) not loading."""
    if CUDA_EP not in ort.get_available_providers():
        double = install_problem()
        if double:
            return double
        return f"this onnxruntime build has no {CUDA_EP}: {GPU_HINT} instead of onnxruntime"
    capi = Path(ort.__file__).parent / "capi"
    shared = capi / "libonnxruntime_providers_shared.so"
    if shared.is_file():
        with contextlib.suppress(OSError):
            ctypes.CDLL(str(shared), mode=ctypes.RTLD_GLOBAL)
    lib = capi / "libonnxruntime_providers_cuda.so"
    problem = dlopen_problem(lib) if lib.is_file() else f"{lib.name} is missing from {capi}"
    failed = preload_failures()
    if problem:
        extra = f" (preload_dlls could not load: {'; '.join(failed)[:200]})" if failed else ""
        return f"the CUDA provider does not load: {problem[:300]}{extra}"
    return (
        "the CUDA provider loads but did not start (a driver older than this onnxruntime-gpu's CUDA, "
        "or no usable GPU): see ONNX Runtime's log above"
    )


def require_provider(session, ort, wanted: str = CUDA_EP) -> None:
    """BackendUnavailable unless ``session`` really runs on ``wanted`` (its first provider)."""
    got = session.get_providers()
    if not got or got[0] != wanted:
        first = got[0] if got else "no provider"
        raise BackendUnavailable(f"ort-cuda: ONNX Runtime fell back to {first}: {cuda_fallback_reason(ort)}")


def _probe_model() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def cuda_session(ort, model, options, provider_options: dict):
    """A session on the CUDA provider (after ``preload_dlls``), BackendUnavailable if it fell back."""
    preload_failures()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Specified provider ... is not in available provider names"
        session = ort.InferenceSession(
            model, options, providers=[(CUDA_EP, provider_options), "CPUExecutionProvider"]
        )
    require_provider(session, ort)
    return session


@functools.cache
def _probe(device_id: int) -> str | None:
    ort = import_ort()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        cuda_session(ort, _probe_model(), so, {"device_id": device_id})
    except BackendUnavailable as e:
        return str(e).removeprefix("ort-cuda: ")
    except Exception as e:  # onnxruntime's own exception types
        return f"the CUDA provider failed: {' '.join(str(e).split())[:300]}"
    return None


def cuda_problem_isolated(device_id: int = 0, timeout: float = 180) -> str | None:
    """``cuda_problem`` in a fresh interpreter, so that this process creates no CUDA context (the
    benchmark's parent process: its workers measure the GPU's memory, which a context here would inflate)."""
    import subprocess

    code = (
        "from trt_inpaint.runtime.backends.onnxruntime import cuda_problem\n"
        f"print('ORT-CUDA:' + (cuda_problem({int(device_id)}) or ''))"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"the ort-cuda check did not finish in {timeout:.0f} s"
    line = next((x for x in proc.stdout.splitlines() if x.startswith("ORT-CUDA:")), None)
    if line is None:
        last = next(
            (x for x in reversed(proc.stderr.splitlines()) if x.strip()), f"exit status {proc.returncode}"
        )
        return f"the ort-cuda check failed: {last.strip()[:300]}"
    return line[len("ORT-CUDA:") :].strip() or None


def cuda_problem(device_id: int = 0) -> str | None:
    """None when the CUDA execution provider runs here (a tiny session is created once to prove it),
    else why not."""
    try:
        ort = import_ort()
    except BackendUnavailable as e:
        return str(e)
    double = install_problem()
    if double:
        return double
    if CUDA_EP not in ort.get_available_providers():
        return cuda_fallback_reason(ort)
    return gpu.gpu_problem() or _probe(device_id)


def model_bytes(path: Path) -> int:
    """The model file plus external-data files beside it (``<name>.data`` / ``<name>_data``)."""
    total = path.stat().st_size if path.exists() else 0
    for extra in (path.with_name(path.name + ".data"), path.with_name(path.name + "_data")):
        if extra.exists():
            total += extra.stat().st_size
    return total


class OrtRunner(Runner):
    """One stage as an ONNX Runtime session."""

    def __init__(
        self,
        stage: Stage,
        path: str | Path,
        *,
        device: str = "cpu",
        device_id: int = 0,
        threads: int | None = None,
        gpu_mem_limit: int | None = None,
    ):
        super().__init__(Stage(stage).value)
        self.stage = Stage(stage)
        self.path = Path(path)
        self.device = device
        self.device_id = device_id
        self.threads = threads
        self.gpu_mem_limit = gpu_mem_limit
        self.backend = Backend.ORT_CUDA if device == "cuda" else Backend.ORT_CPU
        self.providers: tuple[str, ...] = ()  # the session's providers, set at load
        self._session = None

    def estimate_footprint(self) -> int:
        """Before loading: the weights' size."""
        return model_bytes(self.path)

    def _provider_options(self) -> dict:
        opts = {"device_id": self.device_id, "arena_extend_strategy": "kSameAsRequested"}
        if self.gpu_mem_limit:
            opts["gpu_mem_limit"] = int(self.gpu_mem_limit)
        return opts

    def _load(self) -> None:
        ort = import_ort()
        if not self.path.is_file():
            raise EngineError("ONNX model not found", self.path)
        cuda = self.device == "cuda"
        if cuda:
            problem = cuda_problem(self.device_id)
            if problem:
                raise BackendUnavailable(f"ort-cuda: {problem}")
        before = gpu.device_memory_used(self.device_id) if cuda else gpu.process_rss()
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if self.threads:
            so.intra_op_num_threads = self.threads
        try:
            if cuda:
                session = cuda_session(ort, str(self.path), so, self._provider_options())
            else:
                session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except BackendUnavailable:
            raise
        except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            self._raise_oom(e)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            first = first.replace(f"from {self.path} ", "").replace(str(self.path), "the file")
            raise EngineError(
                f"cannot load the ONNX model (corrupt or not ONNX): {first[:300]}", self.path
            ) from e
        self._check_io(session)
        self._session = session
        self.providers = tuple(session.get_providers())
        if cuda:
            self._run(self._warmup_feeds())
            after = gpu.device_memory_used(self.device_id)
            self.footprint = max(0, (after or 0) - (before or 0))
        else:
            self.footprint = max(gpu.process_rss() - before, model_bytes(self.path))

    def _raise_oom(self, e: Exception) -> None:
        """BudgetError when ONNX Runtime's exception says the device (or host) memory ran out."""
        text = " ".join(str(e).split())
        if any(w in text.lower() for w in OOM_WORDS):
            where = f"GPU {self.device_id}" if self.device == "cuda" else "host"
            raise BudgetError(
                f"stage {self.stage.value}: out of {where} memory in ONNX Runtime ({text[:200]})"
            ) from e

    def _check_io(self, session) -> None:
        s = spec(self.stage)
        got_in = {i.name for i in session.get_inputs()}
        got_out = {o.name for o in session.get_outputs()}
        if got_in != set(s.input_names) or not set(s.output_names) <= got_out:
            raise EngineError(
                f"model inputs {sorted(got_in)} / outputs {sorted(got_out)} do not match stage {s.name} "
                f"({list(s.input_names)} -> {list(s.output_names)}): rebuild the engines",
                self.path,
            )

    def _warmup_feeds(self) -> dict[str, np.ndarray]:
        s = spec(self.stage)
        side = s.fixed_size or s.opt_size
        feeds = random_feeds(self.stage, 1, 0)
        for t in s.inputs:
            if t.role is not Role.NOISE:
                feeds[t.name] = np.zeros(t.concrete(1, side, side), np.float32)
        return feeds

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(spec(self.stage).output_names)
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        if self.device != "cuda":
            return dict(zip(names, self._session.run(names, feeds), strict=True))
        ort = import_ort()
        binding = self._session.io_binding()
        for name, arr in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", self.device_id))
        for name in names:
            binding.bind_output(name, "cuda", self.device_id)
        try:
            self._session.run_with_iobinding(binding)
        except Exception as e:  # onnxruntime's own exception types
            self._raise_oom(e)
            raise
        return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))

    def _unload(self) -> None:
        self._session = None
