"""What the benchmark runs: one row per (runtime backend, precision), each available here or not, and why.

Rows map onto the runtime's backends (``trt_inpaint.runtime.backends``); runners are made through the
runtime's registry, so the benchmark measures exactly what ``trt-inpaint`` runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trt_inpaint.bench.machine import cpu_supports_bf16
from trt_inpaint.export.spec import Precision, Stage
from trt_inpaint.runtime.backends.base import Backend, Runner


class Numeric(str, enum.Enum):
    """Arithmetic precision of a benchmark row (bf16: PyTorch autocast and OpenVINO, on CPUs with native
    bf16)."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class BenchBackend:
    key: str  # command-line name, e.g. "ort-cpu-fp32"
    label: str  # table name, e.g. "ONNX Runtime CPU"
    backend: Backend
    numeric: Numeric
    device: str  # "cpu" or "cuda"
    note: str = ""  # caveat printed under the table
    cuda_graphs: bool = False  # PyTorch only: each stage captured as a CUDA graph and replayed

    @property
    def file_precision(self) -> Precision:
        """Which exported file the row runs (fp16 rows run the mixed fp16 ONNX / engine)."""
        return Precision.FP16 if self.numeric is Numeric.FP16 else Precision.FP32

    @property
    def precision(self) -> Precision:
        """The runtime precision of the row's selection: OpenVINO computes bf16 from the fp32 file; PyTorch's
        bf16 row is its fp32 stages under autocast."""
        if self.backend is Backend.OPENVINO:
            return Precision(self.numeric.value)
        return self.file_precision


TABLE: tuple[BenchBackend, ...] = (
    BenchBackend(
        "torch-fp32",
        "PyTorch eager",
        Backend.TORCH,
        Numeric.FP32,
        "cpu",
        "reference: the stage modules in eager mode, what IOPaint-style tools run",
    ),
    BenchBackend(
        "torch-bf16", "PyTorch eager", Backend.TORCH, Numeric.BF16, "cpu", "autocast bf16 on the CPU"
    ),
    BenchBackend("torch-cuda-fp32", "PyTorch eager CUDA", Backend.TORCH, Numeric.FP32, "cuda"),
    BenchBackend(
        "torch-cuda-fp16", "PyTorch eager CUDA", Backend.TORCH, Numeric.FP16, "cuda", "autocast fp16"
    ),
    BenchBackend(
        "torch-cuda-graphs-fp16",
        "PyTorch CUDA graphs",
        Backend.TORCH,
        Numeric.FP16,
        "cuda",
        "autocast fp16; each stage captured once per input shape (in the first run) and replayed",
        cuda_graphs=True,
    ),
    BenchBackend("ort-cpu-fp32", "ONNX Runtime CPU", Backend.ORT_CPU, Numeric.FP32, "cpu"),
    BenchBackend(
        "ort-cpu-fp16",
        "ONNX Runtime CPU",
        Backend.ORT_CPU,
        Numeric.FP16,
        "cpu",
        "the CPU provider has no fp16 kernels for most ops: it casts to fp32 around them, so this "
        "row measures fp16 storage, not fp16 arithmetic",
    ),
    BenchBackend(
        "openvino-fp32",
        "OpenVINO CPU",
        Backend.OPENVINO,
        Numeric.FP32,
        "cpu",
        "the fp32 ONNX, INFERENCE_PRECISION_HINT f32",
    ),
    BenchBackend(
        "openvino-bf16",
        "OpenVINO CPU",
        Backend.OPENVINO,
        Numeric.BF16,
        "cpu",
        "the fp32 ONNX, INFERENCE_PRECISION_HINT bf16 (CPUs with native bf16 only); % of the bf16 peak",
    ),
    BenchBackend("ort-cuda-fp16", "ONNX Runtime CUDA", Backend.ORT_CUDA, Numeric.FP16, "cuda"),
    BenchBackend("tensorrt-fp16", "TensorRT", Backend.TENSORRT, Numeric.FP16, "cuda"),
)
BY_KEY = {b.key: b for b in TABLE}
DEFAULT_KEYS = tuple(b.key for b in TABLE)


def lookup(keys: list[str] | tuple[str, ...]) -> list[BenchBackend]:
    """Rows by key, in table order; ValueError naming unknown keys."""
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise ValueError(f"unknown backend {', '.join(unknown)}; choose from {', '.join(BY_KEY)}")
    return [b for b in TABLE if b.key in keys]


def unavailable_reason(b: BenchBackend, engines: Path, stages: tuple[Stage, ...]) -> str | None:
    """None when row ``b`` can run here with the files in ``engines``, else a one-line reason."""
    from trt_inpaint.runtime.backends.registry import files_problem, module_problem, precision_problem
    from trt_inpaint.runtime.engines import EngineDir

    if b.backend is Backend.ORT_CUDA:  # proved by a real CUDA session, in a process of its own
        from trt_inpaint.runtime.backends.onnxruntime import cuda_problem_isolated

        problem = cuda_problem_isolated()
    else:
        problem = module_problem(b.backend)
    if problem:
        return problem
    if b.backend is Backend.TORCH:
        if b.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                return f"torch {torch.__version__} sees no CUDA device"
        elif b.numeric is Numeric.BF16 and not cpu_supports_bf16():
            return "this CPU has no native bf16 (no AVX512-BF16 / AMX): PyTorch would only emulate it"
    elif b.backend is Backend.OPENVINO:
        problem = precision_problem(b.backend, b.precision)
        if problem:
            return problem
    ed = EngineDir(engines)
    if b.backend is not Backend.TORCH and not ed.folder.is_dir():
        return f"engines folder {engines} does not exist"
    return files_problem(ed, b.backend, list(stages), b.file_precision)


def device_mismatch(b: BenchBackend, providers: list[str]) -> str | None:
    """Why the ONNX Runtime sessions of row ``b`` did not run where the row says (first providers), or None.
    A CUDA row whose session fell back to the CPU must never be reported as a CUDA measurement."""
    if b.backend not in (Backend.ORT_CPU, Backend.ORT_CUDA) or not providers:
        return None
    want = "CUDAExecutionProvider" if b.device == "cuda" else "CPUExecutionProvider"
    wrong = sorted(set(providers) - {want})
    return f"row {b.key} ran on {', '.join(wrong)}, not {want}" if wrong else None


def runner_factory(b: BenchBackend, engines: Path, threads: int | None = None) -> Callable[[Stage], Runner]:
    """Stage -> an unloaded runner from the runtime's registry, pinned to the row's device and precision."""
    from trt_inpaint.runtime.backends.registry import RunnerOptions, Selection, make_runner
    from trt_inpaint.runtime.engines import EngineDir

    ed = EngineDir(engines)
    selection = Selection(b.backend, b.precision)
    options = RunnerOptions(threads=threads)

    def make(stage: Stage) -> Runner:
        runner = make_runner(selection, stage, ed, options)
        if b.backend is Backend.TORCH:
            runner.device = b.device
            if b.cuda_graphs:
                from trt_inpaint.bench.cudagraphs import cuda_graph_runner

                runner = cuda_graph_runner(runner, b.numeric.value)
            elif b.numeric is not Numeric.FP32:
                from trt_inpaint.bench.autocast import autocast_runner

                runner = autocast_runner(runner, b.numeric.value)
        return runner

    return make
