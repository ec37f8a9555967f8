"""One backend's measurements in a process of its own.

    python -m trt_inpaint.bench.worker JOB.json OUT.json


A fresh process per backend keeps resident-memory figures clean (one library's allocator pools do not
count against the next) and lets a crash in one backend leave the others' results intact.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trt_inpaint import atomic

PROGRESS_PREFIX = "bench-progress: "


@dataclass
class Job:
    backend: str  # BenchBackend key
    engines: str
    pipeline: str = "ensemble"
    size: int = 512
    batches: list[int] = field(default_factory=lambda: [1])
    warmup: int = 1
    runs: int = 5
    scaling_stage: str = "lama"
    scaling_sizes: list[int] = field(default_factory=list)  # empty: no scaling run
    budgets: list[str] = field(default_factory=list)  # budgets.resolve_budget names or sizes; empty: none
    budget_images: int = 2
    threads: int | None = None
    interval: float = 0.02
    quick: bool = False  # scaling sizes: the first run is the only sample
    cache_loads: bool = False  # OpenVINO rows: first load (compile) against later loads (from the cache)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Job:
        return cls(**d)


def scaling_runs(size: int, warmup: int, runs: int) -> tuple[int, int]:
    """(warm-up, runs) at ``size``. Large images repeat less: one run of LaMa at 2048x2048 takes minutes on
    a 2-core CPU and varies little; runs 0 means the first run is the only sample (flagged in the report)."""
    if size >= 2048:
        return 0, 0
    if size >= 1024:
        return 0, min(runs, 1)
    return warmup, runs


def batch_runs(batch: int, warmup: int, runs: int) -> tuple[int, int]:
    """(warm-up, runs) for a batch: above 1 image, the first run is the only sample (each run holds
    ``batch`` images; the first run's one-time costs are small beside it)."""
    return (warmup, runs) if batch == 1 else (0, 0)


def run_job(job: Job, progress=None) -> dict:
    """All measurements of ``job`` in this process; returns the result dict (JSON-ready)."""
    from trt_inpaint.bench.backends import BY_KEY, device_mismatch, runner_factory
    from trt_inpaint.bench.measure import bench_pipeline, bench_stage_sizes
    from trt_inpaint.bench.memory import RssSampler, device_memory
    from trt_inpaint.export.spec import Pipeline, Stage, pipeline_stages

    progress = progress or (lambda msg: None)
    b = BY_KEY[job.backend]
    if b.backend.value == "torch" and job.threads:
        import torch

        torch.set_num_threads(job.threads)
    made = runner_factory(b, Path(job.engines), job.threads)
    runners = []

    def factory(stage):
        runners.append(made(stage))
        return runners[-1]

    dev = device_memory() if b.device == "cuda" else None
    sampler = RssSampler(interval=job.interval, device=dev).start()
    result: dict = {"backend": b.key, "job": job.to_dict(), "pipeline_runs": [], "scaling": [], "budgets": []}
    try:
        if job.cache_loads:
            from trt_inpaint.bench.cacheloads import bench_cache_loads

            result["cache_loads"] = bench_cache_loads(made, list(pipeline_stages(job.pipeline)), progress)
        for batch in job.batches:
            tag = f"{job.pipeline} b{batch}: "
            warmup, runs = batch_runs(batch, job.warmup, job.runs)
            result["pipeline_runs"].append(
                bench_pipeline(
                    factory,
                    Pipeline(job.pipeline),
                    job.size,
                    batch,
                    warmup,
                    runs,
                    sampler,
                    lambda m, t=tag: progress(m if m.startswith(t) else t + m),
                    tag,
                )
            )
        if job.scaling_sizes:
            result["scaling"] = bench_stage_sizes(
                factory,
                Stage(job.scaling_stage),
                job.scaling_sizes,
                job.warmup,
                job.runs,
                sampler,
                progress,
                runs_for=lambda s: (0, 0) if job.quick else scaling_runs(s, job.warmup, job.runs),
            )
        if job.budgets:
            from trt_inpaint.bench.budgets import bench_budgets

            result["budgets"] = bench_budgets(
                factory, Pipeline(job.pipeline), job.size, job.budgets, job.budget_images, sampler, progress
            )
    finally:
        sampler.stop()
    # ONNX Runtime rows: the provider each session really ran on (a CUDA row never reports a CPU run)
    providers = sorted({r.providers[0] for r in runners if getattr(r, "providers", ())})
    if providers:
        result["execution_providers"] = providers
    mismatch = device_mismatch(b, providers)
    if mismatch:
        from trt_inpaint.errors import BackendUnavailable

        raise BackendUnavailable(mismatch)
    result["peak_rss"] = sampler.peak
    result["memory"] = sampler.to_dict(max_points=1500)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m trt_inpaint.bench.worker JOB.json OUT.json", file=sys.stderr)
        return 2
    job = Job.from_dict(json.loads(Path(argv[0]).read_text()))
    out = Path(argv[1])

    def progress(msg: str) -> None:
        print(PROGRESS_PREFIX + msg, file=sys.stderr, flush=True)

    try:
        result = run_job(job, progress)
        rc = 0
    except Exception as e:  # reported in the table as this backend's failure, never hides the others
        first = " ".join(str(e).split()) or type(e).__name__
        result = {
            "backend": job.backend,
            "error": f"{type(e).__name__}: {first}"[:500],
            "traceback": traceback.format_exc()[-4000:],
        }
        rc = 1
    atomic.write_text(out, json.dumps(result))
    return rc


if __name__ == "__main__":
    sys.exit(main())
