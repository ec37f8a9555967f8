"""The runtime's engine pool under memory budgets: loads, swaps (evictions) and what they cost.

Each budget gets a fresh pool of the backend's runners, wrapped so that every load and unload is timed and
marked on the memory timeline. Modes: ``folder`` runs the images stage-major as ``trt-inpaint --images``
does (one load per stage at most); ``one-by-one`` runs them as separate requests on one pool, where a
budget below the total forces reloads for every image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from trt_inpaint.bench.inputs import sample_batch
from trt_inpaint.bench.memory import RssSampler
from trt_inpaint.bench.timing import clock
from trt_inpaint.errors import BudgetError
from trt_inpaint.export.spec import PIPELINES, Pipeline, Stage
from trt_inpaint.runtime.backends.base import Runner
from trt_inpaint.runtime.footprints import FootprintCache
from trt_inpaint.runtime.pipeline import run_items
from trt_inpaint.runtime.pool import EnginePool
from trt_inpaint.runtime.store import IntermediateStore
from trt_inpaint.runtime.units import format_bytes, parse_bytes
from trt_inpaint.runtime.workitem import WorkItem

SEED = 0
RETRIES = 2  # a named budget that a load measured above is raised to that and tried again
# ``within_budget``: the process's resident growth over a budget run (sampled peak minus the level at its
# start) must stay within the budget plus this slack plus the intermediates the store held (the runtime
# caps those apart, with --host-cache). The slack covers the working memory of the stage that runs.
BUDGET_SLACK = 64 << 20


class TimedRunner(Runner):
    """Delegates to ``inner``; logs (kind, stage, seconds) of each load/unload and marks the timeline."""

    def __init__(self, inner: Runner, sampler: RssSampler, log: list[tuple[str, str, float]]):
        super().__init__(inner.name)
        self.inner, self.sampler, self.log = inner, sampler, log
        self.backend = inner.backend

    @property
    def path(self):  # the footprint cache keys runners by their file
        return getattr(self.inner, "path", None)

    def estimate_footprint(self) -> int:
        fn = getattr(self.inner, "estimate_footprint", None)
        return int(fn()) if fn else 0

    closing = False  # set before the pool closes: those unloads are not swaps

    def _load(self) -> None:
        t0 = clock()
        self.inner.load()
        self.log.append(("load", self.name, clock() - t0))
        self.footprint = self.inner.footprint
        reload = self.load_count > 0  # Runner.load counts after _load returns
        self.sampler.mark(f"{'reload' if reload else 'load'} {self.name}", "swap-in" if reload else "load")

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inner.run(feeds)

    def _unload(self) -> None:
        t0 = clock()
        self.inner.unload()
        self.log.append(("close" if self.closing else "unload", self.name, clock() - t0))
        self.sampler.mark(f"unload {self.name}", "unload" if self.closing else "swap-out")


def resolve_budget(name: str, footprints: dict[Stage, int]) -> int | None:
    """Bytes (None: unlimited) for a budget name: all = unlimited; half = half the total, at least the
    largest stage; tight = the largest stage plus 5 %; or a size such as 3GiB."""
    total, largest = sum(footprints.values()), max(footprints.values(), default=0)
    if name == "all":
        return None
    if name == "half":
        return max(total // 2, int(largest * 1.05))
    if name == "tight":
        return int(largest * 1.05)
    return parse_bytes(name)


def _reload_seconds(log: list[tuple[str, str, float]]) -> float:
    """Seconds spent loading a stage again after the budget evicted it (its first load excluded)."""
    seen: set[str] = set()
    total = 0.0
    for kind, name, dt in log:
        if kind == "load":
            total += dt if name in seen else 0.0
            seen.add(name)
    return total


def _run(
    factory: Callable[[Stage], Runner],
    pipeline: Pipeline,
    budget: int | None,
    images: list[tuple[np.ndarray, np.ndarray]],
    one_by_one: bool,
    sampler: RssSampler,
    cache: FootprintCache,
    reference: list[np.ndarray] | None = None,
) -> tuple[dict | None, dict[Stage, int], str | None]:
    """(row, footprints a later pool may assume, None), or (None, footprints, the BudgetError's text).

    The row's ``outputs`` (the final outputs, popped by the caller) are compared with ``reference`` (the
    unlimited-budget run's) for ``outputs_ok``; without one, ``outputs_ok`` says they are all finite.
    ``within_budget`` compares the sampled resident growth with the budget (see BUDGET_SLACK); memory that
    an earlier run freed can serve this one without growth, so it can miss an overrun, never invent one."""
    log: list[tuple[str, str, float]] = []
    stages = [c.stage for c in PIPELINES[pipeline]]
    runners = {s: TimedRunner(factory(s), sampler, log) for s in stages}
    pool = EnginePool(dict(runners), budget, cache)
    store = IntermediateStore(cap=None)
    items = [WorkItem.from_tensors(f"img{i}", im, m, pipeline, SEED) for i, (im, m) in enumerate(images)]
    w = sampler.window_start("budget")
    t0 = clock()
    try:
        pool.check(stages)
        batches = [[it] for it in items] if one_by_one else [items]
        for batch in batches:
            run_items(pool, batch, store)
            failed = next((it.error for it in batch if it.error is not None), None)
            if failed is not None:  # the item's own typed error: a BudgetError is retried with more below
                raise failed
        total = clock() - t0
        outputs = [it.result for it in items]
        intermediates = store.peak_in_memory + sum(o.nbytes for o in outputs)  # results live in the items
    except BudgetError as e:
        return None, _assumed_sizes(pool, runners), str(e)
    finally:
        for r in runners.values():
            r.closing = True
        pool.close()
        store.close()
    w = sampler.window_end(w)
    loads = sum(pool.stats.loads.values())
    unload_s = [dt for k, _, dt in log if k == "unload"]
    row = {
        "budget": budget,
        "budget_text": format_bytes(budget),
        "mode": "one-by-one" if one_by_one else "folder",
        "images": len(images),
        "loads": loads,
        "reloads": loads - len(pool.stats.loads),
        "swaps": pool.stats.evictions,
        "load_s": sum(dt for k, _, dt in log if k == "load"),
        "swap_in_s": _reload_seconds(log),
        "swap_out_s": sum(unload_s),
        "total_s": total,
        "peak_accounted": pool.stats.peak_used,
        "peak_rss": w.peak_rss,
        "rss_growth": w.delta,
        "slack": BUDGET_SLACK + intermediates,
        "within_budget": budget is None or w.delta <= budget + BUDGET_SLACK + intermediates,
        "accounted_within_budget": budget is None or pool.stats.peak_used <= budget,
        "outputs_ok": _same_outputs(outputs, reference),
        "outputs": outputs,
        "footprints": {s.value: n for s, n in pool.stats.footprints.items()},
    }
    return row, _assumed_sizes(pool, runners), None


def _same_outputs(outputs: list[np.ndarray], reference: list[np.ndarray] | None) -> bool:
    """Bit-identical to the reference run's outputs (a budget changes when stages load, never results);
    without a reference: present and finite."""
    if reference is None:
        return all(np.isfinite(o).all() for o in outputs)
    return len(outputs) == len(reference) and all(
        np.array_equal(o, r) for o, r in zip(outputs, reference, strict=True)
    )


def _assumed_sizes(pool: EnginePool, runners: dict[Stage, TimedRunner]) -> dict[Stage, int]:
    """The most a later pool may assume per stage: the measurement (cached) or its estimate scaled by the
    largest measured/estimated ratio (see EnginePool.footprint)."""
    est = {s: runners[s].estimate_footprint() for s in pool.stats.footprints}
    ratio = max([1.0, *(n / est[s] for s, n in pool.stats.footprints.items() if est[s] > 0)])
    return {s: max(n, int(est[s] * ratio)) for s, n in pool.stats.footprints.items()}


def bench_budgets(
    factory: Callable[[Stage], Runner],
    pipeline: Pipeline,
    size: int,
    budgets: list[str | int | None],
    n_images: int,
    sampler: RssSampler,
    progress: Callable[[str], None] = lambda m: None,
) -> list[dict]:
    """One row per (budget, mode). The unlimited budget runs first: the footprints it measures size the
    named budgets (raised and tried again, up to RETRIES times, when a load measures more). The one-by-one
    mode runs for "tight" with 2+ images."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="inpaint-bench-footprints-") as tmp:
        cache = FootprintCache(Path(tmp) / "footprints.json")  # shared by this run's pools only
        return _bench_budgets(factory, pipeline, size, budgets, n_images, sampler, progress, cache)


def _bench_budgets(factory, pipeline, size, budgets, n_images, sampler, progress, cache) -> list[dict]:
    image, mask = sample_batch(size, n_images)
    images = [(image[i : i + 1], mask[i : i + 1]) for i in range(n_images)]
    names = [b if isinstance(b, str) else format_bytes(b) for b in budgets]
    sampler.mark("budgets", "phase")
    progress("budget all: folder")
    base, footprints, _ = _run(factory, pipeline, None, images, False, sampler, cache)
    assert base is not None  # an unlimited budget cannot fail
    reference = base.pop("outputs")
    base["budget_name"] = "all"
    rows = [base] if "all" in names or not names else []
    for name in names:
        if name == "all":
            continue
        modes = (False, True) if name == "tight" and n_images > 1 else (False,)
        for one in modes:
            for attempt in range(RETRIES + 1):
                budget = resolve_budget(name, footprints) if isinstance(name, str) else name
                progress(f"budget {name} ({format_bytes(budget)}): {'one-by-one' if one else 'folder'}")
                row, seen, error = _run(factory, pipeline, budget, images, one, sampler, cache, reference)
                footprints = {s: max(n, seen.get(s, 0)) for s, n in footprints.items()}
                if row is not None or name not in ("tight", "half") or attempt == RETRIES:
                    break
            if row is not None:
                row.pop("outputs")
            if row is None:
                row = {"budget": budget, "budget_text": format_bytes(budget), "mode": "one-by-one" if one else
                       "folder", "images": n_images, "error": error}  # fmt: skip
            row["budget_name"] = name
            row["attempts"] = attempt + 1
            rows.append(row)
    for r in rows:
        r["budget_text"] = f"{r['budget_name']} ({r['budget_text']})"
        if "error" in r:
            continue
        r["overhead_vs_all"] = r["total_s"] / base["total_s"] - 1.0
    return rows
