"""The measurements of one backend, in-process: pipeline per stage and end to end, batch, scaling.

Every function takes a ``factory`` that makes a runner for a stage (the runtime's contract), so the same
code measures every backend and, in tests, tiny models.
"""

from __future__ import annotations

from collections.abc import Callable

from trt_inpaint.bench.inputs import sample_batch, stage_inputs
from trt_inpaint.bench.memory import RssSampler, Window, rss_bytes
from trt_inpaint.bench.pipeline import noise_for, run_pipeline
from trt_inpaint.bench.timing import clock, summarize
from trt_inpaint.export.spec import PIPELINES, Pipeline, Stage
from trt_inpaint.runtime.backends.base import Runner

RunnerFactory = Callable[[Stage], Runner]
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def bench_pipeline(
    factory: RunnerFactory,
    pipeline: Pipeline,
    size: int,
    batch: int,
    warmup: int,
    runs: int,
    sampler: RssSampler,
    progress: Progress = _quiet,
    tag: str = "",
) -> dict:
    """Load every stage (timed), one first run (timed apart), ``warmup`` untimed, ``runs`` timed runs.

    Per stage: load seconds, first-run seconds, p50/p90 of its calls inside the timed pipeline runs,
    memory the load added (weights), peak working memory above the level before its call, absolute peak.
    End to end: p50/p90 of whole runs, images/s, the process peak over the phase.
    """
    stages = [c.stage for c in PIPELINES[pipeline]]
    image, mask = sample_batch(size, batch)
    noise = noise_for(pipeline, batch)
    sampler.mark(f"{tag}start", "phase")
    whole = sampler.window_start("pipeline")
    runners: dict[Stage, Runner] = {}
    per: dict[Stage, dict] = {s: {"stage": s.value, "run_s": []} for s in stages}
    for s in stages:
        progress(f"{tag}load {s.value}")
        r = factory(s)
        before = sampler.window_start(f"load {s.value}")
        t0 = clock()
        r.load()
        per[s]["load_s"] = clock() - t0
        w = sampler.window_end(before)
        sampler.mark(f"load {s.value}", "load")
        per[s]["load_rss"] = max(0, rss_bytes() - w.start_rss)
        per[s]["load_peak_delta"] = w.delta
        per[s]["footprint"] = int(getattr(r, "footprint", 0) or 0)
        # OpenVINO: whether the compiled model came from its cache, and the precision it computes in
        per[s]["from_cache"] = getattr(r, "loaded_from_cache", None)
        per[s]["compiled_precision"] = getattr(r, "compiled_precision", None)
        runners[s] = r
    windows: dict[Stage, Window] = {}
    work_peak: dict[Stage, int] = dict.fromkeys(stages, 0)
    abs_peak: dict[Stage, int] = dict.fromkeys(stages, 0)
    device_peak: dict[Stage, int | None] = dict.fromkeys(stages)

    def hook(stage: Stage, when: str) -> None:
        if when == "start":
            windows[stage] = sampler.window_start(stage.value)
        else:
            w = sampler.window_end(windows[stage])
            work_peak[stage] = max(work_peak[stage], w.delta)
            abs_peak[stage] = max(abs_peak[stage], w.peak_rss)
            if w.device_peak is not None:
                device_peak[stage] = max(device_peak[stage] or 0, w.device_peak)

    try:
        progress(f"{tag}first run")
        times: dict[Stage, float] = {}
        t0 = clock()
        run_pipeline(runners, pipeline, image, mask, noise, times, hook)
        first = clock() - t0
        for s in stages:
            per[s]["first_run_s"] = times[s]
        for i in range(warmup):
            progress(f"{tag}warm-up {i + 1}/{warmup}")
            run_pipeline(runners, pipeline, image, mask, noise, None, hook)
        e2e = []
        if runs == 0:  # the first run is the only sample (large batches on a CPU): flagged in the result
            e2e.append(first)
            for s in stages:
                per[s]["run_s"].append(times[s])
        for i in range(runs):
            progress(f"{tag}run {i + 1}/{runs}")
            t0 = clock()
            run_pipeline(runners, pipeline, image, mask, noise, times, hook)
            e2e.append(clock() - t0)
            for s in stages:
                per[s]["run_s"].append(times[s])
    finally:
        for r in runners.values():
            r.unload()
    w = sampler.window_end(whole)
    sampler.mark(f"{tag}end", "phase")
    rows = []
    for s in stages:
        d = per[s]
        st = summarize(d.pop("run_s"))
        d.update(
            stats=st.to_dict(),
            images_per_s=batch / st.p50,
            work_peak_delta=work_peak[s],
            peak_rss=abs_peak[s],
            stage_memory=max(d["load_rss"], d["footprint"]) + work_peak[s],
            device_peak=device_peak[s],
        )
        rows.append(d)
    st = summarize(e2e)
    return {
        "pipeline": pipeline.value,
        "size": size,
        "batch": batch,
        "warmup": warmup,
        "runs": runs,
        "first_is_sample": runs == 0,
        "stages": rows,
        "end_to_end": {
            "stats": st.to_dict(),
            "images_per_s": batch / st.p50,
            "first_run_s": first,
            "load_s": sum(per[s]["load_s"] for s in stages),
            "peak_rss": w.peak_rss,
            "device_peak": w.device_peak,
        },
    }


def bench_stage_sizes(
    factory: RunnerFactory,
    stage: Stage,
    sizes: list[int],
    warmup: int,
    runs: int,
    sampler: RssSampler,
    progress: Progress = _quiet,
    runs_for: Callable[[int], tuple[int, int]] | None = None,
) -> list[dict]:
    """One stage alone at each size (one load): p50/p90, seconds per megapixel, peak working memory."""
    out = []
    r = factory(stage)
    t0 = clock()
    r.load()
    load_s = clock() - t0
    sampler.mark(f"scaling {stage.value}", "phase")
    try:
        for size in sizes:
            feeds = stage_inputs(stage, size)
            wu, n = runs_for(size) if runs_for else (warmup, runs)
            w = sampler.window_start(f"{stage.value}@{size}")
            progress(f"{stage.value} {size}x{size}: first run")
            t0 = clock()
            r.run(feeds)
            first = clock() - t0
            for i in range(wu):
                progress(f"{stage.value} {size}x{size}: warm-up {i + 1}/{wu}")
                r.run(feeds)
            samples = [first] if n == 0 else []  # large sizes: the first run is the only sample (flagged)
            for i in range(n):
                progress(f"{stage.value} {size}x{size}: run {i + 1}/{n}")
                t0 = clock()
                r.run(feeds)
                samples.append(clock() - t0)
            w = sampler.window_end(w)
            st = summarize(samples)
            mpix = size * size / 1e6
            out.append(
                {
                    "stage": stage.value,
                    "size": size,
                    "megapixels": mpix,
                    "first_run_s": first,
                    "first_is_sample": n == 0,
                    "stats": st.to_dict(),
                    "s_per_megapixel": st.p50 / mpix,
                    "peak_rss": w.peak_rss,
                    "work_peak_delta": w.delta,
                    "device_peak": w.device_peak,
                    "load_s": load_s,
                }
            )
    finally:
        r.unload()
    return out
