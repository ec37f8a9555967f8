"""Backend -> runner factory, with availability (and the reason when not) and AUTO selection.

AUTO tries, fastest first: TensorRT, ONNX Runtime CUDA, OpenVINO, ONNX Runtime CPU, PyTorch; it takes the
first whose modules, device and files are all here, and says which and why the faster ones were passed
over. Without a usable NVIDIA GPU the first two are passed over, so OpenVINO runs where it is installed.

The precision, unless asked for, is the first of the backend's ``PREFERRED_PRECISION`` that it can compute
here and has files for; OpenVINO's depend on its device and, on the CPU, on native bf16
(``runtime.cpu``). The selection says why it took its precision. bf16 runs on OpenVINO only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from trt_inpaint.errors import BackendUnavailable, EngineError, InputError
from trt_inpaint.export.spec import Precision, Stage
from trt_inpaint.runtime.backends.base import Backend, Runner
from trt_inpaint.runtime.backends.openvino import PRECISIONS as OPENVINO_PRECISIONS
from trt_inpaint.runtime.backends.openvino import OpenVinoDevice
from trt_inpaint.runtime.engines import EngineDir, export_hint

AUTO_ORDER = (Backend.TENSORRT, Backend.ORT_CUDA, Backend.OPENVINO, Backend.ORT_CPU, Backend.TORCH)
# precision tried first per backend when none is asked for (ONNX Runtime's CPU provider has no fp16 kernels;
# OpenVINO on the CPU: bf16 where the CPU has it natively, else fp32; on a GPU: fp16 where listed)
PREFERRED_PRECISION = {
    Backend.TENSORRT: (Precision.FP16, Precision.FP32),
    Backend.ORT_CUDA: (Precision.FP16, Precision.FP32),
    Backend.OPENVINO: OPENVINO_PRECISIONS[OpenVinoDevice.CPU],
    Backend.ORT_CPU: (Precision.FP32, Precision.FP16),
    Backend.TORCH: (Precision.FP32,),
}


@dataclass(frozen=True)
class RunnerOptions:
    threads: int | None = None  # CPU threads of ONNX Runtime and OpenVINO (None: their default)
    device_id: int = 0
    gpu_mem_limit: int | None = None
    openvino_device: OpenVinoDevice = OpenVinoDevice.CPU


@dataclass(frozen=True)
class Selection:
    backend: Backend
    precision: Precision
    passed_over: dict[Backend, str] = field(default_factory=dict)  # faster backends AUTO skipped, and why
    why: str = ""  # why this precision
    notes: tuple[str, ...] = ()  # anything else the user should know (e.g. where compiled models are cached)

    def describe(self) -> str:
        skipped = "; ".join(f"{b}: {r}" for b, r in self.passed_over.items())
        text = f"backend {self.backend} ({self.precision}" + (f": {self.why})" if self.why else ")")
        text += "".join(f"; {n}" for n in self.notes)
        return text + (f", auto passed over {skipped}" if skipped else "")


def _findable(name: str) -> bool:
    """Whether ``name`` could be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def module_problem(backend: Backend, openvino_device: OpenVinoDevice = OpenVinoDevice.CPU) -> str | None:
    """None if the backend's modules and device are here, else why not. Never imports torch."""
    if backend is Backend.TENSORRT:
        from trt_inpaint.runtime.backends.tensorrt import trt_problem

        return trt_problem()
    if backend is Backend.ORT_CUDA:
        from trt_inpaint.runtime.backends.onnxruntime import cuda_problem

        return cuda_problem()
    if backend is Backend.ORT_CPU:
        return (
            None
            if _findable("onnxruntime")
            else "onnxruntime is not installed (pip install 'trt-inpaint[cpu]')"
        )
    if backend is Backend.OPENVINO:
        from trt_inpaint.runtime.backends.openvino import device_problem

        return device_problem(openvino_device)
    if backend is Backend.TORCH:
        return None if _findable("torch") else "torch is not installed (pip install 'trt-inpaint[torch]')"
    raise ValueError(f"not a concrete backend: {backend}")


def preferred_precisions(
    backend: Backend, device: OpenVinoDevice = OpenVinoDevice.CPU
) -> tuple[Precision, ...]:
    return OPENVINO_PRECISIONS[device] if backend is Backend.OPENVINO else PREFERRED_PRECISION[backend]


def precision_problem(
    backend: Backend, precision: Precision, device: OpenVinoDevice = OpenVinoDevice.CPU
) -> str | None:
    """Why ``backend`` cannot compute in ``precision`` here (None: it can, given the files)."""
    if backend is Backend.OPENVINO:
        from trt_inpaint.runtime.backends.openvino import precision_problem as openvino_problem

        return openvino_problem(precision, device)
    if precision is Precision.BF16:
        runs = ", ".join(p.value for p in PREFERRED_PRECISION[backend])
        return f"bf16 runs on the openvino backend only ({backend} runs {runs})"
    return None


def precision_reason(
    backend: Backend, precision: Precision, asked: bool, device: OpenVinoDevice = OpenVinoDevice.CPU
) -> str:
    """Why the selection computes in ``precision``."""
    if backend is Backend.OPENVINO:
        from trt_inpaint.runtime.backends.openvino import precision_reason as openvino_reason

        return openvino_reason(precision, device, asked)
    if asked:
        return f"{precision} as asked"
    order = ", ".join(map(str, PREFERRED_PRECISION[backend]))
    return "its only precision" if "," not in order else f"the first of {order} with files here"


def selection_notes(backend: Backend, engines: EngineDir, device: OpenVinoDevice) -> tuple[str, ...]:
    if backend is not Backend.OPENVINO:
        return ()
    from trt_inpaint.runtime.backends.openvino import cache_root

    root, note = cache_root(engines.folder)
    notes = (note or f"compiled models cached in {root}",)
    return notes + (f"OpenVINO device {device}",) * (device is not OpenVinoDevice.CPU)


def stage_path(engines: EngineDir, backend: Backend, stage: Stage, precision: Precision) -> Path | None:
    if backend is Backend.TENSORRT:
        return engines.engine(stage, precision)
    if backend in (Backend.ORT_CPU, Backend.ORT_CUDA):
        return engines.onnx(stage, precision)
    if backend is Backend.OPENVINO:  # the precision is a hint to its compiler: always the fp32 ONNX
        return engines.onnx(stage, Precision.FP32)
    return None


def files_problem(
    engines: EngineDir, backend: Backend, stages: list[Stage], precision: Precision
) -> str | None:
    if backend is Backend.TORCH:
        facts = {s: engines.stage_facts(s) for s in stages}
        missing = [s.value for s, f in facts.items() if f.random_init_seed is None and not f.checkpoints]
        return (
            f"the manifest in {engines.folder} names no weights for {', '.join(missing)}" if missing else None
        )
    paths = [stage_path(engines, backend, s, precision) for s in stages]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        return f"missing {', '.join(missing)} in {engines.folder}"
    return targets_problem(engines, stages) if backend is Backend.TENSORRT else None


def targets_problem(engines: EngineDir, stages: list[Stage]) -> str | None:
    """Why TensorRT-RTX engines (by the compute capabilities the manifest records) cannot run on this GPU,
    or None (also when the GPU or the record is unknown). AUTO then passes over TensorRT with this reason."""
    from trt_inpaint.runtime import gpu

    cc = gpu.shared_compute_capability()
    if cc is None:
        return None
    for s in stages:
        targets = engines.stage_facts(s).compute_capabilities
        problem = gpu.target_problem(list(targets), cc) if targets else None
        if problem:
            return f"{s.value}: {problem}"
    return None


def check_sizes(engines: EngineDir, backend: Backend, stages: list[Stage], precision: Precision) -> None:
    """EngineError when a stage file's size differs from the one the manifest recorded (damaged or stale)."""
    for s in stages:
        path = stage_path(engines, backend, s, precision)
        if path is None:
            continue
        recorded = engines.recorded_bytes(s, path.name)
        if recorded is not None and path.stat().st_size != recorded:
            raise EngineError(
                f"is {path.stat().st_size} bytes but the manifest recorded {recorded} (damaged or replaced): "
                f"{export_hint(engines.folder)}",
                path,
            )


def select(
    backend: Backend,
    engines: EngineDir,
    stages: list[Stage],
    precision: Precision | None = None,
    openvino_device: OpenVinoDevice = OpenVinoDevice.CPU,
) -> Selection:
    """The concrete backend and precision to use; BackendUnavailable / EngineError with the reason;
    InputError for bf16 asked of a backend that never computes it."""
    if precision is Precision.BF16 and backend not in (Backend.AUTO, Backend.OPENVINO):
        raise InputError(f"--precision bf16: {precision_problem(backend, precision)}")
    if backend is not Backend.TORCH and not engines.folder.is_dir():
        raise EngineError(f"engines folder {engines.folder} does not exist: {export_hint(engines.folder)}")
    device = OpenVinoDevice(openvino_device)
    candidates = AUTO_ORDER if backend is Backend.AUTO else (backend,)
    passed: dict[Backend, str] = {}
    not_here: set[Backend] = set()  # passed over for its modules, device or precision, not its files
    for b in candidates:
        problem = module_problem(b, device)
        if problem:
            passed[b] = problem
            not_here.add(b)
            continue
        for p in (precision,) if precision else preferred_precisions(b, device):
            problem = precision_problem(b, p, device)
            if problem:
                not_here.add(b)
                continue
            not_here.discard(b)
            problem = files_problem(engines, b, stages, p)
            if not problem:
                check_sizes(engines, b, stages, p)
                why = precision_reason(b, p, precision is not None, device)
                notes = selection_notes(b, engines, device)
                return Selection(b, p, passed if backend is Backend.AUTO else {}, why, notes)
        passed[b] = problem
    if backend is not Backend.AUTO:
        cls = BackendUnavailable if backend in not_here else EngineError
        tail = f": {export_hint(engines.folder)}" if cls is EngineError else ""
        raise cls(f"backend {backend} cannot run: {passed[backend]}{tail}")
    if all(module_problem(b) is None for b in (Backend.ORT_CPU,)) and files_problem(
        engines, Backend.ORT_CPU, stages, Precision.FP32
    ):
        raise EngineError(
            f"no usable engines for {', '.join(s.value for s in stages)} in {engines.folder}: "
            f"{export_hint(engines.folder)}"
        )
    raise BackendUnavailable("no backend can run here: " + "; ".join(f"{b}: {r}" for b, r in passed.items()))


def _torch_factory(engines: EngineDir, stage: Stage):
    """A callable building the stage wrapper from the manifest's weights (seeded random or checkpoint)."""
    facts = engines.stage_facts(stage)
    seed, tiny, path = facts.random_init_seed, facts.tiny, facts.checkpoints.get("path")
    if seed is None and path is None:
        raise BackendUnavailable(
            f"torch backend: the manifest in {engines.folder} names no weights for {stage}"
        )

    def factory():
        from trt_inpaint.models import stages

        if seed is not None:
            return stages.random_stage(stage, seed, tiny)
        return stages.load_stage(stage, path)

    return factory


def make_runner(
    selection: Selection, stage: Stage, engines: EngineDir, options: RunnerOptions | None = None
) -> Runner:
    """A runner (not loaded) for ``stage`` on the selected backend."""
    options = options or RunnerOptions()
    b, p = selection.backend, selection.precision
    if b is Backend.OPENVINO:
        from trt_inpaint.runtime.backends.openvino import OpenVinoRunner, cache_root

        return OpenVinoRunner(
            stage,
            stage_path(engines, b, stage, p),  # the fp32 ONNX whatever the precision
            precision=p,
            device=options.openvino_device,
            threads=options.threads,
            cache_root=cache_root(engines.folder)[0],
        )
    if b in (Backend.ORT_CPU, Backend.ORT_CUDA):
        from trt_inpaint.runtime.backends.onnxruntime import OrtRunner

        return OrtRunner(
            stage,
            engines.onnx(stage, p),
            device="cuda" if b is Backend.ORT_CUDA else "cpu",
            device_id=options.device_id,
            threads=options.threads,
            gpu_mem_limit=options.gpu_mem_limit,
        )
    if b is Backend.TENSORRT:
        from trt_inpaint.runtime.backends.tensorrt import TrtRunner

        facts = engines.stage_facts(stage)
        return TrtRunner(
            stage,
            engines.engine(stage, p),
            module=facts.trt_module,
            expect_version=facts.trt_version,
            targets=facts.compute_capabilities if facts.trt_module == "tensorrt_rtx" else None,
        )
    if b is Backend.TORCH:
        from trt_inpaint.runtime.backends.torch import TorchRunner

        onnx = engines.onnx(stage, Precision.FP32)
        hint = onnx.stat().st_size if onnx.exists() else 0
        return TorchRunner(stage, _torch_factory(engines, stage), device="auto", size_hint=hint)
    raise ValueError(f"not a concrete backend: {b}")
