"""The Python API: ``Inpainter`` runs a pipeline of stages on images within a memory budget.

Three steps that work apart, across threads and processes (``WorkItem`` is plain and picklable):

    from trt_inpaint.runtime import Inpainter
    with Inpainter(engines="engines", backend="auto", memory_budget="16GiB") as inp:
        items = [inp.prepare(image, mask), inp.prepare_file("photo.jpg", "mask.png", seed=7)]
        inp.run(items)                          # stage-major through the pool: one load per stage
        out = inp.finish(items[0])              # numpy, the input's shape and dtype
        inp.write(items[1], "photo_out.jpg")    # atomically, in the input's format

and compositions of them: ``inpaint(image, mask)``, ``inpaint_many(pairs)``, ``inpaint_files(triples)``.
Arrays are RGB(A); every pixel outside the mask (and the alpha channel) equals the input's bit for bit.
Options: ``InpaintOptions`` (keywords of the constructor), whose defaults are the CLI's.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from trt_inpaint.errors import InputError, TrtInpaintError
from trt_inpaint.export.spec import Stage, pipeline_stages
from trt_inpaint.runtime import finish as finish_step
from trt_inpaint.runtime import prepare as prepare_step
from trt_inpaint.runtime.backends.base import Backend
from trt_inpaint.runtime.backends.registry import RunnerOptions, Selection, make_runner, select
from trt_inpaint.runtime.engines import EngineDir
from trt_inpaint.runtime.finish import Encoded
from trt_inpaint.runtime.footprints import FootprintCache
from trt_inpaint.runtime.options import InpaintOptions
from trt_inpaint.runtime.pipeline import Progress, RunReport, run_items
from trt_inpaint.runtime.pool import EnginePool
from trt_inpaint.runtime.store import IntermediateStore
from trt_inpaint.runtime.workitem import Source, WorkItem


@dataclass
class FileResult:
    image: Path
    mask: Path | None
    output: Path | None
    status: str  # "ok", "unchanged" (empty mask), "skipped" (output present) or "failed"
    error: TrtInpaintError | None = None
    note: str | None = None  # e.g. why a JPEG was re-encoded whole

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else self.error.exit_code

    def as_dict(self) -> dict:
        return {
            "image": str(self.image),
            "mask": None if self.mask is None else str(self.mask),
            "output": None if self.output is None else str(self.output),
            "status": self.status,
            "error": None if self.error is None else str(self.error),
            "error_type": None if self.error is None else type(self.error).__name__,
            "note": self.note,
        }


@dataclass
class Report:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    spilled: int = 0  # arrays written to the spill folder
    peak_host_bytes: int = 0  # arrays held in host memory at most

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


class Inpainter:
    """Runs ``options.models`` on ``options.backend`` with engines from ``options.engines``, within
    ``options.memory_budget``. Pass an ``InpaintOptions`` or its fields as keywords.

    ``prepare``/``prepare_file``/``finish``/``encode``/``write`` touch no engine and may be called from any
    thread; ``run`` owns the pool (calls are serialised).

    ``hold``: only these stages of ``options.models`` get a runner (a cluster's staged layout gives each actor
    one); the backend is still chosen for the whole pipeline, so that every holder chooses alike.
    """

    def __init__(
        self,
        options: InpaintOptions | None = None,
        /,
        *,
        log=None,
        hold: Sequence[Stage] | None = None,
        **fields,
    ):
        self.options = replace(options, **fields) if options else InpaintOptions(**fields)
        opts = self.options
        self.log = log or (lambda msg: None)
        self.engines = EngineDir(opts.engines)
        self.stages: list[Stage] = list(pipeline_stages(opts.models))
        self.selection: Selection = select(
            opts.backend, self.engines, self.stages, opts.precision, opts.openvino_device
        )
        if hold is not None:
            self.stages = [s for s in self.stages if s in set(hold)]
        self.log(self.selection.describe())
        if self.selection.backend is Backend.ORT_CPU:  # ort-cuda refuses a double install outright
            from trt_inpaint.runtime.backends.onnxruntime import install_problem

            double = install_problem()
            if double:
                self.log(f"warning: {double}")
        runner_options = RunnerOptions(
            threads=opts.threads, gpu_mem_limit=opts.memory_budget, openvino_device=opts.openvino_device
        )
        runners = {s: make_runner(self.selection, s, self.engines, runner_options) for s in self.stages}
        self.pool = EnginePool(runners, opts.memory_budget, FootprintCache(opts.footprint_cache))
        self.pool.check(self.stages)  # a stage larger than the budget fails here, before any work
        self._lock = threading.Lock()

    # ---- the three steps ---------------------------------------------------------------------------

    def _item_options(self, overrides: dict) -> InpaintOptions:
        opts = self.options.for_item(**overrides)
        missing = [s.value for s in pipeline_stages(opts.models) if s not in self.stages]
        if missing:
            raise InputError(
                f"models {opts.models} need stage(s) {', '.join(missing)}, which this Inpainter does not "
                f"hold (it was made for models {self.options.models})"
            )
        return opts

    def prepare(self, image: np.ndarray, mask: np.ndarray, *, name: str = "image", **overrides) -> WorkItem:
        """A work item from arrays. ``overrides``: per-image options (models, seed, hd_strategy, ...)."""
        return prepare_step.prepare(image, mask, self._item_options(overrides), Source(name))

    def prepare_file(self, image_path: str | Path, mask_path: str | Path, **overrides) -> WorkItem:
        """A work item from files, each decoded once (EXIF orientation, bit depth and alpha kept)."""
        return prepare_step.prepare_file(image_path, mask_path, self._item_options(overrides))

    def prepare_bytes(
        self, image: bytes, mask: bytes, *, suffix: str, name: str = "image", **overrides
    ) -> WorkItem:
        """A work item from encoded bytes (an upload), decoded as a file would be; ``suffix``: its format."""
        return prepare_step.prepare_bytes(
            image, mask, self._item_options(overrides), suffix=suffix, name=name
        )

    def run(self, items: Sequence[WorkItem], progress: Progress | None = None) -> RunReport:
        """Fill each pending item's ``result`` or typed ``error``, stage-major (one load per stage)."""
        for item in items:
            if item.pending and any(s not in self.stages for s in pipeline_stages(item.pipeline)):
                item.error = InputError(
                    f"needs models {item.pipeline}, but this Inpainter holds {self.options.models}", item.name
                )
        with self._lock, IntermediateStore(self.options.host_cache, self.options.spill_dir) as store:
            return run_items(self.pool, items, store, progress)

    @staticmethod
    def finish(item: WorkItem) -> np.ndarray:
        """The inpainted image (the input's shape and dtype); raises the item's error if it failed."""
        return finish_step.finish(item)

    @staticmethod
    def encode(item: WorkItem, suffix: str | None = None) -> Encoded:
        """The finished image as file bytes (default: the input's format)."""
        return finish_step.encode(item, suffix)

    @staticmethod
    def write(item: WorkItem, path: str | Path) -> Encoded:
        """Encode in ``path``'s format (the input's if it has no suffix) and write atomically."""
        return finish_step.write(item, path)

    # ---- compositions -------------------------------------------------------------------------------

    def inpaint(self, image: np.ndarray, mask: np.ndarray, **overrides) -> np.ndarray:
        """The inpainted image (input's shape and dtype); the input itself when the mask is empty."""
        return self.inpaint_many([(image, mask)], **overrides)[0]

    def inpaint_many(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], **overrides) -> list[np.ndarray]:
        """Stage-major over all pairs (one load per stage). Raises the first item's error."""
        items = [self.prepare(img, m, name=f"image {i}", **overrides) for i, (img, m) in enumerate(pairs)]
        self.run(items)
        return [self.finish(it) for it in items]

    def inpaint_files(
        self,
        pairs: Sequence[tuple[str | Path, str | Path | None, str | Path]],
        progress: Progress | None = None,
    ) -> Report:
        """(image, mask, output) triples, stage-major. A bad file is reported in its result and skipped.

        ``mask`` None marks a pair already known to be bad (e.g. no mask found): it fails with that note.
        Each file is decoded once; decoded inputs and results wait in host memory up to ``host_cache`` and
        in the spill folder beyond. Outputs are written atomically; a failed file leaves no output.
        """
        t0 = time.perf_counter()
        report = Report(
            [FileResult(Path(i), None if m is None else Path(m), Path(o), "failed") for i, m, o in pairs]
        )
        tick = progress or (lambda phase, n: None)
        with IntermediateStore(self.options.host_cache, self.options.spill_dir) as store:
            stash = _Stash(store)
            waiting: list[tuple[FileResult, WorkItem]] = []
            for r in report.results:
                try:
                    item = prepare_step.prepare_pair(r.image, r.mask, r.output, self.options)
                    if item.needs_run:
                        waiting.append((r, stash.put(len(waiting), item)))
                    else:
                        r.note = self.write(item, r.output).note
                        r.status = "unchanged"
                except TrtInpaintError as e:
                    r.error = e
                tick("read", 1)
            items = [item for _, item in waiting]
            with self._lock:
                run = run_items(self.pool, items, store, tick, inputs=stash.inputs, sink=stash.put_result)
            report.stage_seconds = {s.value: t for s, t in run.stage_seconds.items()}
            for k, (r, item) in enumerate(waiting):
                try:
                    if item.error is not None:
                        raise item.error
                    r.note = self.write(stash.take(k, item), r.output).note
                    r.status = "ok"
                except TrtInpaintError as e:
                    r.error = e
                finally:
                    stash.drop(k, item)
                tick("write", 1)
            report.spilled, report.peak_host_bytes = store.spilled, store.peak_in_memory
        report.seconds = time.perf_counter() - t0
        return report

    # ---- lifetime -----------------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "backend": self.selection.backend.value,
            "precision": self.selection.precision.value,
            "selection": self.selection.describe(),
            "models": self.options.models.value,
            **self.pool.stats.as_dict(),
        }

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Inpainter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Stash:
    """Folder runs: the items' arrays wait in the intermediate store (host memory up to its cap, then the
    spill folder) between prepare and finish, so a large folder does not hold every decoded image."""

    FIELDS = ("pixels", "hole", "image", "mask")

    def __init__(self, store: IntermediateStore):
        self.store = store

    @staticmethod
    def _key(k: int, name: str) -> str:
        return f"stash\x00{k}\x00{name}"

    def put(self, k: int, item: WorkItem) -> WorkItem:
        for name in self.FIELDS:
            self.store.put(self._key(k, name), getattr(item, name))
            setattr(item, name, None)
        if item.source.data is not None:
            self.store.put(self._key(k, "data"), np.frombuffer(item.source.data, np.uint8))
            item.source.data = None
        return item

    def inputs(self, k: int, item: WorkItem) -> tuple[np.ndarray, np.ndarray]:
        return self.store.get(self._key(k, "image")), self.store.get(self._key(k, "mask"))

    def put_result(self, k: int, item: WorkItem, out: np.ndarray) -> None:
        self.store.put(self._key(k, "result"), out)
        for name in ("image", "mask"):
            self.store.drop(self._key(k, name))

    def take(self, k: int, item: WorkItem) -> WorkItem:
        """The item with its arrays back, ready to finish."""
        for name in ("pixels", "hole", "result"):
            setattr(item, name, self.store.get(self._key(k, name)))
        if self._key(k, "data") in self.store:
            item.source.data = self.store.get(self._key(k, "data")).tobytes()
        return item

    def drop(self, k: int, item: WorkItem) -> None:
        for name in (*self.FIELDS, "data", "result"):
            self.store.drop(self._key(k, name))
        item.pixels = item.hole = item.result = None
        item.source.data = None


def stderr_log(msg: str) -> None:
    print(f"trt-inpaint: {msg}", file=sys.stderr)
