"""The benchmark's options, parsed once from the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from trt_inpaint.bench.backends import DEFAULT_KEYS
from trt_inpaint.export.spec import Pipeline

FULL_SIZES = (256, 512, 1024, 2048)
QUICK_SIZES = (256, 512)
# --quick scales LaMa on one row per device kind (the fp32 CPU row, the fastest GPU rows), not on every row
QUICK_SCALING_BACKENDS = ("ort-cpu-fp32", "ort-cuda-fp16", "tensorrt-fp16")


@dataclass
class BenchConfig:
    engines: Path = Path("engines")
    out: Path = Path("benchmarks/reports/local")
    backends: tuple[str, ...] = DEFAULT_KEYS
    pipeline: Pipeline = Pipeline.ENSEMBLE
    size: int = 512
    sizes: tuple[int, ...] = FULL_SIZES  # scaling of ``scaling_stage`` alone
    scaling_stage: str = "lama"
    scaling_backends: tuple[str, ...] = (
        "ort-cpu-fp32", "ort-cpu-fp16", "openvino-bf16", "ort-cuda-fp16", "tensorrt-fp16", "torch-cuda-fp16",
    )  # fmt: skip
    batches: tuple[int, ...] = (1, 4)
    batch_backends: tuple[str, ...] = ("ort-cpu-fp32", "ort-cuda-fp16", "tensorrt-fp16", "torch-cuda-fp16")
    budgets: tuple[str, ...] = ("all", "tight")  # see budgets.resolve_budget
    budget_backend: str = "ort-cpu-fp32"
    budget_images: int = 2
    warmup: int = 1
    runs: int = 5
    threads: int | None = None
    quick: bool = False
    plot: bool = True
    name: str = ""
    interval: float = 0.02
    peak_n: int = 2048
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(engines=str(self.engines), out=str(self.out), pipeline=self.pipeline.value)
        return d
