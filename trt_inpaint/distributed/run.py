"""``inpaint_files`` on Ray Data: the embedded folder run's (image, mask, output) triples, on a cluster.

    read + prepare (CPU tasks) -> stages (GPU actor pool(s)) -> finish + write (CPU tasks) -> driver

Streaming: a file is written as soon as its batch leaves the actors; the driver only collects small result
rows (status, error, note, timings). Resumable: outputs present are skipped unless ``overwrite``. Bounded:
each actor restarts (and its batch reruns) at most ``max_restarts`` times; actors must start, and some step
must make progress, within ``timeout`` seconds; otherwise the run stops with ``BackendUnavailable``.
Input files' errors fail those files only (exit code 1 in the CLI); an actor that cannot make its Inpainter
stops the run with that error (engines 4, backend 5, budget 6), as the embedded run does.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from trt_inpaint.distributed import rows as rowlib
from trt_inpaint.distributed.cluster import Cluster, import_ray, session
from trt_inpaint.distributed.failures import ray_failures, stopped
from trt_inpaint.distributed.options import Layout, RayOptions
from trt_inpaint.distributed.plan import ActorPool, plan, probe_footprints
from trt_inpaint.distributed.stats import merge_stats
from trt_inpaint.errors import TrtInpaintError
from trt_inpaint.runtime.api import FileResult, Report
from trt_inpaint.runtime.options import InpaintOptions

FileProgress = Callable[[FileResult], None]


@dataclass
class RayRun:
    report: Report  # as Inpainter.inpaint_files gives it, one FileResult per pair in order
    stats: dict  # the actors' Inpainter stats merged (as Inpainter.stats()), plus "ray": how it ran


def inpaint_files(
    pairs: Sequence[tuple[str | Path, str | Path | None, str | Path]],
    options: InpaintOptions | None = None,
    ray_options: RayOptions | None = None,
    *,
    overwrite: bool = False,
    progress: FileProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> RayRun:
    """Inpaint (image, mask, output) triples on a Ray cluster; same outputs as ``Inpainter.inpaint_files``.

    ``mask`` None marks a pair known to be bad (no mask found). ``progress`` is called once per file as its
    result arrives. Paths must be valid on every node (shared storage); relative ones are made absolute here.
    """
    options = _absolute(options or InpaintOptions())
    ray_options = ray_options or RayOptions()
    log = log or (lambda msg: None)
    given = [(Path(i), None if m is None else Path(m), Path(o)) for i, m, o in pairs]
    pairs = [tuple(None if x is None else x.absolute() for x in p) for p in given]
    t0 = time.perf_counter()
    with session(ray_options, log) as cluster:
        ray = import_ray()
        footprints = None
        if ray_options.layout is Layout.STAGED:
            footprints = probe_footprints(ray, cluster, ray_options, options)
        pools = plan(cluster, ray_options, options, footprints)
        log("Ray: " + ", ".join(_describe(p) for p in pools))
        with _data_context(ray, ray_options):
            ds = _dataset(ray, pairs, options, ray_options, pools, overwrite)
            rows = _collect(ds, len(pairs), progress, ray_options)
    seconds = time.perf_counter() - t0
    report = _report(given, rows, seconds)
    stats = merge_stats([w for r in rows.values() for w in r.workers], options)
    stats["ray"] = _ray_stats(cluster, ray_options, pools, footprints, rows, seconds)
    return RayRun(report, stats)


def _absolute(options: InpaintOptions) -> InpaintOptions:
    """Paths in the options as every node must see them."""
    fields = {
        "engines": options.engines,
        "spill_dir": options.spill_dir,
        "footprint_cache": options.footprint_cache,
    }
    return replace(options, **{k: Path(v).absolute() for k, v in fields.items() if v is not None})


def _describe(p: ActorPool) -> str:
    size = f"{p.min_size}" if p.min_size == p.max_size else f"{p.min_size}-{p.max_size}"
    return f"{p.name} x{size} ({p.num_gpus:g} GPU, {p.num_cpus or 1:g} CPU each)"


@contextmanager
def _data_context(ray, ray_options: RayOptions) -> Iterator[None]:
    """Ray Data's settings for this run (restored after): errors fail the run (no dropped blocks), bounded
    waits, no Ray progress bars (the driver shows its own)."""
    ctx = ray.data.DataContext.get_current()
    wanted = {
        "max_errored_blocks": 0,
        "execution_no_progress_timeout_s": float(ray_options.timeout),
        "wait_for_min_actors_s": max(1, math.ceil(ray_options.timeout)),
        "actor_task_retry_on_errors": False,
        "enable_progress_bars": False,
        "print_on_execution_start": False,
    }
    quiet = {"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}  # bars off: said once
    before = {k: getattr(ctx, k) for k in wanted}
    levels = {name: logging.getLogger(name).level for name in quiet}
    for k, v in wanted.items():
        setattr(ctx, k, v)
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)
    try:
        with warnings.catch_warnings():
            # Ray 2.60 takes max_restarts/max_task_retries/max_retries only as such "ray_remote_args"
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            yield
    finally:
        for k, v in before.items():
            setattr(ctx, k, v)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _dataset(
    ray, pairs, options: InpaintOptions, ray_options: RayOptions, pools: list[ActorPool], overwrite: bool
):
    from ray.data import ActorPoolStrategy

    from trt_inpaint.distributed.actors import InpaintActor, StageActor

    b = ray_options.batch
    tasks = {"batch_size": b, "batch_format": "numpy", "num_cpus": 1, "max_retries": ray_options.max_restarts}
    ds = ray.data.from_items(rowlib.input_rows(pairs))
    ds = ds.map_batches(rowlib.prepare_rows, fn_kwargs={"options": options, "overwrite": overwrite}, **tasks)
    for p in pools:
        ds = ds.map_batches(
            InpaintActor if p.stage is None else StageActor,
            fn_constructor_kwargs={"options": options} | ({} if p.stage is None else {"stage": p.stage}),
            compute=ActorPoolStrategy(min_size=p.min_size, max_size=p.max_size),
            batch_size=b,
            batch_format="numpy",
            num_cpus=p.num_cpus,
            num_gpus=p.num_gpus,
            accelerator_type=ray_options.accelerator_type,
            max_restarts=ray_options.max_restarts,
            max_task_retries=ray_options.max_restarts,
        )
    return ds.map_batches(rowlib.finish_rows, **tasks)


def _collect(ds, total: int, progress: FileProgress | None, ray_options: RayOptions) -> dict[int, rowlib.Row]:
    """The result rows by ``k``; stops the run on an actor's start-up error or on Ray's own failure."""
    rows: dict[int, rowlib.Row] = {}
    batches = ds.iter_batches(batch_size=None, batch_format="numpy")
    try:
        for batch in batches:
            for r in rowlib.unpack(batch):
                if r.fatal is not None:
                    raise r.fatal
                rows[r.k] = r
                if progress is not None:
                    progress(_result(r))
    except TrtInpaintError:
        raise
    except ray_failures() as e:
        raise stopped(e, ray_options) from e
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stops the streaming executor (and its actors) when the driver leaves early
    if len(rows) != total:  # Ray Data never drops rows with max_errored_blocks=0; say so if it ever does
        raise stopped(
            RuntimeError(f"{total - len(rows)} of {total} files came back from no step"), ray_options
        )
    return rows


def _result(r: rowlib.Row, given: tuple | None = None) -> FileResult:
    """The row as a FileResult; with ``given`` (the pair as the caller wrote it), its paths, in the
    result and in the error, are the caller's (the workers saw them made absolute)."""
    image, mask, output = (Path(r.image), None if r.mask is None else Path(r.mask), Path(r.output))
    error = r.error
    if given is not None:
        as_given = dict(zip((image, mask, output), given, strict=True))
        if error is not None and error.path in as_given:
            error = type(error)(error.message, as_given[error.path])
        image, mask, output = given
    return FileResult(image, mask, output, r.status, error, r.note)


def _report(given: list[tuple], rows: dict[int, rowlib.Row], seconds: float) -> Report:
    report = Report([_result(rows[k], given[k]) for k in range(len(given))], seconds)
    for r in rows.values():
        for stage, t in r.stage_seconds.items():
            report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + t
    return report


def _ray_stats(cluster: Cluster, ray_options: RayOptions, pools, footprints, rows, seconds: float) -> dict:
    run = sum(r.status in ("ok", "unchanged", "failed") for r in rows.values())
    return {
        "address": cluster.address,
        "started_local_cluster": cluster.started,
        "layout": ray_options.layout.value,
        "pools": {
            p.name: {"actors": [p.min_size, p.max_size], "gpus": p.num_gpus, "cpus": p.num_cpus or 1}
            for p in pools
        },
        "actor_starts": len({w[0] for r in rows.values() for w in r.workers}),
        "footprints": None if footprints is None else {s.value: n for s, n in footprints.items()},
        "batch": ray_options.batch,
        "images_per_s": round(run / seconds, 3) if seconds > 0 else None,
    }
