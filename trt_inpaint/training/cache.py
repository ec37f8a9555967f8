"""cache-outputs (and evaluate's runs): a pipeline's outputs for every (image, mask set) of a prepared folder.

Stage-major through the runtime, as the paper runs it: one Inpainter for LaMa over the whole set, closed
(its engine released), then one for MAT, and so on; so it uses TensorRT or ONNX Runtime where they work.
Resumable: outputs are written atomically and existing ones are skipped. ``outputs/<model>/source.json``
records which weights made them; resuming with engines built from other weights is an error.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from trt_inpaint import atomic
from trt_inpaint.distributed.options import RayOptions
from trt_inpaint.errors import InputError
from trt_inpaint.export.manifest import read_manifest
from trt_inpaint.export.spec import Pipeline, pipeline_stages
from trt_inpaint.runtime.options import InpaintOptions
from trt_inpaint.training.data import OUTPUTS_DIR, Index

SOURCE_NAME = "source.json"


@dataclass(frozen=True)
class RunOptions:
    inpaint: InpaintOptions  # engines, backend, budget, seed, ... (``models`` is set per run)
    chunk: int = 64  # images handed to the runtime at once (stage-major within, engines stay loaded across)
    overwrite: bool = False
    progress: bool = True
    ray: RayOptions | None = None  # run on a Ray cluster (trt_inpaint.distributed) instead of in this process


@dataclass
class RunSummary:
    model: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    backend: str = ""
    first_error: str | None = None


def weights_fingerprint(engines: Path, pipeline: Pipeline) -> dict[str, str]:
    """Per stage of ``pipeline``: a hash of the manifest's record of its weights source ({} without a
    manifest; EngineError if it is damaged)."""
    manifest = read_manifest(engines)
    if manifest is None:
        return {}
    out = {}
    for s in pipeline_stages(pipeline):
        record = manifest.stages.get(s.value)
        src = record.source if record is not None else None
        out[s.value] = hashlib.sha256(json.dumps(src, sort_keys=True).encode()).hexdigest()[:16]
    return out


def _check_source(folder: Path, fp: dict[str, str], overwrite: bool) -> None:
    path = folder / SOURCE_NAME
    if path.is_file() and not overwrite:
        try:
            old = json.loads(path.read_text()).get("weights", {})
        except ValueError:
            old = {}
        if old and fp and old != fp:
            raise InputError(
                "outputs here were made by engines built from other weights; pass --overwrite to redo them",
                folder,
            )


def run_outputs(
    index: Index,
    pipeline: Pipeline | str,
    mask_sets: Sequence[str],
    opts: RunOptions,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Run ``pipeline`` over every (item, mask set) whose output is missing; write outputs/<model>/..."""
    pipeline = Pipeline(pipeline)
    folder = index.root / OUTPUTS_DIR / pipeline.value
    fp = weights_fingerprint(opts.inpaint.engines, pipeline)
    _check_source(folder, fp, opts.overwrite)
    todo, summary = [], RunSummary(pipeline.value)
    for s in mask_sets:
        for it in index.items:
            out = index.output_path(pipeline.value, it, s)
            if out.is_file() and not opts.overwrite:
                summary.skipped += 1
                continue
            todo.append((index.image_path(it), index.mask_path(it, s), out))
    if not todo:
        log(f"{pipeline.value}: all {summary.skipped} outputs present")
        return summary
    for parent in sorted({out.parent for _, _, out in todo}):
        parent.mkdir(parents=True, exist_ok=True)
    run = _run_on_ray if opts.ray is not None else _run_here
    run(
        todo,
        pipeline,
        opts,
        summary,
        lambda backend, precision: _write_source(folder, fp, backend, precision, opts),
        log,
    )
    log(
        f"{pipeline.value}: {summary.done} written, {summary.skipped} already there, {summary.failed} failed"
        + (f" (first: {summary.first_error})" if summary.first_error else "")
    )
    return summary


def _write_source(folder: Path, fp: dict[str, str], backend: str, precision: str, opts: RunOptions) -> None:
    atomic.write_text(
        folder / SOURCE_NAME,
        json.dumps(
            {
                "weights": fp,
                "backend": backend,
                "precision": precision,
                "seed": opts.inpaint.seed,
                "engines": str(Path(opts.inpaint.engines).resolve()),
            },
            indent=1,
        ),
    )


def _tally(summary: RunSummary, results) -> None:
    for r in results:
        if r.status == "failed":
            summary.failed += 1
            summary.first_error = summary.first_error or r.error
        else:
            summary.done += 1


def _run_here(todo, pipeline: Pipeline, opts: RunOptions, summary: RunSummary, record, log) -> None:
    """In this process: one Inpainter, chunk after chunk, released at the end."""
    from tqdm import tqdm

    from trt_inpaint.runtime.api import Inpainter

    inp = Inpainter(opts.inpaint, models=pipeline, log=lambda m: log(f"{pipeline.value}: {m}"))
    try:
        summary.backend = inp.selection.backend.value
        record(summary.backend, inp.selection.precision.value)
        bar = tqdm(total=len(todo), disable=not opts.progress, desc=pipeline.value, unit="img")
        for start in range(0, len(todo), opts.chunk):
            chunk = todo[start : start + opts.chunk]
            _tally(summary, inp.inpaint_files(chunk).results)
            bar.update(len(chunk))
            bar.set_postfix(failed=summary.failed)
        bar.close()
    finally:
        inp.close()  # release the engines before the next model loads
        del inp
        gc.collect()


def _run_on_ray(todo, pipeline: Pipeline, opts: RunOptions, summary: RunSummary, record, log) -> None:
    """On a Ray cluster (``trt_inpaint.distributed``); its actors end with the run, engines with them."""
    from trt_inpaint.distributed.progress import FileBar
    from trt_inpaint.distributed.run import inpaint_files

    bar = FileBar(len(todo), opts.progress, desc=pipeline.value)
    try:
        run = inpaint_files(
            todo,
            replace(opts.inpaint, models=pipeline),
            opts.ray,
            overwrite=True,  # the outputs present are not in ``todo``
            progress=bar.update,
            log=lambda m: log(f"{pipeline.value}: {m}"),
        )
    finally:
        bar.close()
    summary.backend = run.stats["backend"] or ""
    record(summary.backend, run.stats["precision"])
    _tally(summary, run.report.results)


def cache_outputs(
    index: Index,
    mask_sets: Sequence[str],
    opts: RunOptions,
    models: Sequence[Pipeline] = (Pipeline.LAMA, Pipeline.MAT),
    log: Callable[[str], None] = print,
) -> list[RunSummary]:
    """LaMa over the whole set, release, MAT over the whole set (the paper's step-by-step order)."""
    return [run_outputs(index, m, mask_sets, opts, log) for m in models]
