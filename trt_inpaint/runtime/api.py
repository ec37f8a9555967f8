"""The Python API: ``Inpainter`` runs a pipeline of stages on images within a memory budget.

    from trt_inpaint.runtime.api import Inpainter
    with Inpainter(engines="engines", backend="auto", memory_budget="16GiB") as inp:
        out = inp.inpaint(image, mask)          # numpy: HxW or HxWxC RGB(A), uint8/uint16/float32
        report = inp.inpaint_files([(img_path, mask_path, out_path), ...])

Arrays are RGB(A); the result has the input's shape and dtype, and every pixel outside the mask (and the
alpha channel) equals the input's bit for bit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trt_inpaint.errors import InputError, TrtInpaintError
from trt_inpaint.export.spec import Pipeline, Precision, Stage, pipeline_stages, spec
from trt_inpaint.runtime import hd, imaging
from trt_inpaint.runtime.backends.base import Backend
from trt_inpaint.runtime.backends.registry import RunnerOptions, Selection, make_runner, select
from trt_inpaint.runtime.engines import EngineDir
from trt_inpaint.runtime.footprints import FootprintCache
from trt_inpaint.runtime.pipeline import Progress, output_key, put_inputs, run_stage_major
from trt_inpaint.runtime.pool import EnginePool
from trt_inpaint.runtime.store import IntermediateStore
from trt_inpaint.runtime.units import parse_bytes

DEFAULT_SEED = 240  # IOPaint runs MAT with seed 240
DEFAULT_BUDGET = "16GiB"
DEFAULT_HOST_CACHE = "2GiB"


@dataclass
class FileResult:
    image: Path
    mask: Path | None
    output: Path | None
    status: str  # "ok", "unchanged" (empty mask) or "failed"
    error: str | None = None
    exit_code: int = 0  # of the error, when failed

    def as_dict(self) -> dict:
        return {
            "image": str(self.image),
            "mask": None if self.mask is None else str(self.mask),
            "output": None if self.output is None else str(self.output),
            "status": self.status,
            "error": self.error,
        }


@dataclass
class Report:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    spilled: int = 0  # intermediates written to the spill folder
    peak_host_bytes: int = 0  # intermediates held in host memory at most

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass
class _Job:
    """One image on its way through: where it comes from, and how it maps to the working size."""

    name: str
    geometry: hd.Geometry | None = None  # None: empty mask, nothing to run


class Inpainter:
    """Runs ``models`` (a Pipeline) on ``backend`` with engines from ``engines``, within ``memory_budget``.

    ``footprint_cache``: a JSON file of footprints measured in earlier runs (the CLI uses
    ``footprints.default_cache_path()``), so the budget check before any work uses measured sizes;
    None: estimates only.
    """

    def __init__(
        self,
        engines: str | Path = "engines",
        backend: Backend | str = Backend.AUTO,
        memory_budget: str | int | None = DEFAULT_BUDGET,
        models: Pipeline | str = Pipeline.ENSEMBLE,
        seed: int = DEFAULT_SEED,
        hd_strategy: hd.HdStrategy | str = hd.HdStrategy.CROP,
        crop_margin: int = 128,
        precision: Precision | str | None = None,
        host_cache: str | int | None = DEFAULT_HOST_CACHE,
        resize_mask: bool = False,
        threads: int | None = None,
        spill_dir: str | Path | None = None,
        footprint_cache: str | Path | None = None,
        log: Callable[[str], None] | None = None,
    ):
        try:
            self.backend_request = Backend(backend)
            self.pipeline = Pipeline(models)
            self.hd = hd.HdConfig(hd.HdStrategy(hd_strategy), crop_margin)
            self.precision = Precision(precision) if precision else None
            self.budget = parse_bytes(memory_budget)
            self.host_cache = parse_bytes(host_cache)
        except ValueError as e:
            raise InputError(str(e)) from None
        self.seed = seed
        self.resize_mask = resize_mask
        self.spill_dir = spill_dir
        self.log = log or (lambda msg: None)
        self.engines = EngineDir(engines)
        self.stages: list[Stage] = list(pipeline_stages(self.pipeline))
        self.selection: Selection = select(self.backend_request, self.engines, self.stages, self.precision)
        self.log(self.selection.describe())
        options = RunnerOptions(threads=threads, gpu_mem_limit=self.budget)
        runners = {s: make_runner(self.selection, s, self.engines, options) for s in self.stages}
        self.pool = EnginePool(runners, self.budget, FootprintCache(footprint_cache))
        self.pool.check(self.stages)  # a stage larger than the budget fails here, before any work

    # ---- arrays -----------------------------------------------------------------------------------

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The inpainted image (input's shape and dtype); the input itself when the mask is empty."""
        return self.inpaint_many([(image, mask)])[0]

    def inpaint_many(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Stage-major over all pairs (one load per stage). Raises on the first bad input."""
        prepared = []
        with IntermediateStore(self.host_cache, self.spill_dir) as store:
            jobs = []
            for i, (image, mask) in enumerate(pairs):
                image = imaging.check_image(image)
                hole = imaging.fit_mask(imaging.threshold_mask(mask), image.shape[:2], self.resize_mask)
                job = self._prepare(str(i), image, hole, store)
                prepared.append((image, hole))
                jobs.append(job)
            report = run_stage_major(
                self.pool, self.pipeline, [j.name for j in jobs if j.geometry], store, self.seed
            )
            if report.failures:
                raise InputError(next(iter(report.failures.values())))
            return [self._finish(j, img, hole, store) for j, (img, hole) in zip(jobs, prepared, strict=True)]

    def _prepare(self, name: str, image: np.ndarray, hole: np.ndarray, store: IntermediateStore) -> _Job:
        if not hole.any():
            return _Job(name)
        geo = hd.plan(image.shape[0], image.shape[1], hole, self.hd, [spec(s) for s in self.stages])
        rgb = hd.to_work(imaging.to_float_rgb(image), geo, is_mask=False)
        m = hd.to_work(hole.astype(np.float32), geo, is_mask=True)
        put_inputs(store, name, rgb.transpose(2, 0, 1)[None].copy(), m[None, None].copy())
        return _Job(name, geo)

    def _finish(self, job: _Job, image: np.ndarray, hole: np.ndarray, store: IntermediateStore) -> np.ndarray:
        if job.geometry is None:
            return image.copy()
        key = output_key(self.pipeline, job.name)
        out = store.get(key)[0].transpose(1, 2, 0)
        store.drop(key)
        return imaging.composite(
            image, hd.from_work(np.ascontiguousarray(out), job.geometry), job.geometry, hole
        )

    # ---- files ------------------------------------------------------------------------------------

    def _read_pair(self, image_path: Path, mask_path: Path) -> tuple[imaging.ImageFile, np.ndarray]:
        img = imaging.read_image(image_path)
        hole = imaging.threshold_mask(imaging.read_mask(mask_path), mask_path)
        hole = imaging.fit_mask(hole, img.pixels.shape[:2], self.resize_mask, mask_path)
        return img, hole

    def inpaint_files(
        self,
        pairs: Sequence[tuple[str | Path, str | Path | None, str | Path]],
        progress: Progress | None = None,
    ) -> Report:
        """(image, mask, output) triples, stage-major. A bad file is reported in its result and skipped.

        ``mask`` None marks a pair already known to be bad (e.g. no mask found): it fails with that note.
        Outputs are written atomically; a failed file leaves no output behind.
        """
        t0 = time.perf_counter()
        report = Report()
        results = [
            FileResult(Path(i), None if m is None else Path(m), Path(o), "failed") for i, m, o in pairs
        ]
        report.results = results
        jobs: dict[str, tuple[_Job, FileResult]] = {}
        tick = progress or (lambda phase, n: None)
        with IntermediateStore(self.host_cache, self.spill_dir) as store:
            for i, r in enumerate(results):
                try:
                    if r.mask is None:
                        raise InputError("no mask found for this image", r.image)
                    if r.output.resolve() == r.image.resolve():
                        raise InputError("output would overwrite the input image", r.output)
                    img, hole = self._read_pair(r.image, r.mask)
                    job = self._prepare(str(i), img.pixels, hole, store)
                    if job.geometry is None:
                        self._write_unchanged(img, r.output)
                        r.status = "unchanged"
                    else:
                        jobs[job.name] = (job, r)
                except TrtInpaintError as e:
                    r.error, r.exit_code = str(e), e.exit_code
                tick("read", 1)
            run = run_stage_major(self.pool, self.pipeline, list(jobs), store, self.seed, tick)
            report.stage_seconds = {s.value: t for s, t in run.stage_seconds.items()}
            for name, (job, r) in jobs.items():
                try:
                    if name in run.failures:
                        raise InputError(run.failures[name], r.image)
                    img, hole = self._read_pair(r.image, r.mask)
                    result = self._finish(job, img.pixels, hole, store)
                    imaging.write_image(r.output, result, r.output.suffix or img.suffix)
                    r.status = "ok"
                except TrtInpaintError as e:
                    r.error, r.exit_code = str(e), e.exit_code
                tick("write", 1)
            report.spilled, report.peak_host_bytes = store.spilled, store.peak_in_memory
        report.seconds = time.perf_counter() - t0
        return report

    @staticmethod
    def _write_unchanged(img: imaging.ImageFile, out: Path) -> None:
        """Empty mask: the input file's bytes when the format is the same, else its pixels re-encoded."""
        if out.suffix.lower() == img.suffix:
            if not out.parent.is_dir():
                raise InputError("output folder does not exist", out.parent)
            imaging.write_atomic(out, img.path.read_bytes())
        else:
            imaging.write_image(out, img.pixels)

    # ---- lifetime ---------------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "backend": self.selection.backend.value,
            "precision": self.selection.precision.value,
            "models": self.pipeline.value,
            **self.pool.stats.as_dict(),
        }

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Inpainter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stderr_log(msg: str) -> None:
    print(f"trt-inpaint: {msg}", file=sys.stderr)
