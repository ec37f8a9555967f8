"""The engine pool: which stages are resident under a memory budget, loading and evicting them (LRU).

Accounting uses each runner's footprint as measured at load, or the largest measured before for that
stage (a reload can reuse memory the allocator kept, so its resident growth understates the stage). Before
a stage's first load the pool uses the footprint measured in an earlier run (``FootprintCache``) if there
is one, else its estimate (the weights' size) scaled by the largest measured/estimated ratio seen so far on
this pool (a backend's overhead over its weights is similar across stages). Before a load the pool evicts
least recently used stages until the stage fits; if the measured footprint turns out larger, it evicts
more right after the load. A stage that cannot fit even alone is a ``BudgetError``: ``check`` raises it
for every stage before any work starts. ``events`` keeps the last ``EVENTS_KEPT`` loads, evictions and
growths (a server that swaps on every batch runs for weeks); ``stats`` counts them all.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from trt_inpaint.errors import BudgetError
from trt_inpaint.export.spec import Stage
from trt_inpaint.runtime.backends.base import Runner
from trt_inpaint.runtime.footprints import FootprintCache
from trt_inpaint.runtime.units import format_bytes

EVENTS_KEPT = 1000  # pool events remembered (the newest): enough to read a run's swaps, bounded for servers


@dataclass(frozen=True)
class PoolEvent:
    kind: str  # "load", "evict" or "grow" (a footprint that grew while running)
    stage: Stage
    used: int  # bytes accounted right after the event


@dataclass
class PoolStats:
    budget: int | None
    loads: Counter = field(default_factory=Counter)  # stage -> loads
    evictions: int = 0  # unloads forced by the budget (a swap)
    peak_used: int = 0
    footprints: dict[Stage, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "budget_bytes": self.budget,
            "loads": {s.value: n for s, n in self.loads.items()},
            "swaps": self.evictions,
            "peak_pool_bytes": self.peak_used,
            "footprints": {s.value: n for s, n in self.footprints.items()},
        }


def _estimate(runner: Runner) -> int:
    return int(runner.estimate_footprint())


class EnginePool:
    """Holds one runner per stage; ``acquire(stage)`` returns it loaded, evicting others to fit the budget."""

    def __init__(
        self,
        runners: dict[Stage, Runner],
        budget: int | None,
        cache: FootprintCache | None = None,
        events_kept: int = EVENTS_KEPT,
    ):
        self.runners = dict(runners)
        self.budget = budget
        self.cache = cache or FootprintCache(None)
        self._resident: OrderedDict[Stage, None] = OrderedDict()  # least recently used first
        self.stats = PoolStats(budget)
        self.events: deque[PoolEvent] = deque(maxlen=events_kept)  # the newest last

    @property
    def used(self) -> int:
        return sum(self.stats.footprints.get(s, 0) for s in self._resident)

    @property
    def resident(self) -> list[Stage]:
        return list(self._resident)

    def _ratio(self) -> float:
        ratios = [
            self.stats.footprints[s] / est
            for s in self.stats.footprints
            if (est := _estimate(self.runners[s])) > 0
        ]
        return max([1.0, *ratios])

    def footprint(self, stage: Stage) -> int:
        """Measured footprint if the stage was loaded before, else its (scaled) estimate."""
        if stage in self.stats.footprints:
            return self.stats.footprints[stage]
        estimate = int(_estimate(self.runners[stage]) * self._ratio())
        return max(self.cache.get(self.runners[stage]) or 0, estimate)

    def _too_big(self, stage: Stage, size: int, how: str) -> BudgetError:
        return BudgetError(
            f"stage {stage.value} needs {format_bytes(size)} ({how}) but the memory budget is "
            f"{format_bytes(self.budget)}: raise --memory-budget or use smaller engines (fp16)"
        )

    def check(self, stages: list[Stage] | None = None) -> None:
        """BudgetError if any stage alone exceeds the budget (estimated before its first load)."""
        if self.budget is None:
            return
        for s in stages or list(self.runners):
            size = self.footprint(s)
            if size > self.budget:
                known = s in self.stats.footprints or self.cache.get(self.runners[s]) is not None
                raise self._too_big(s, size, "measured" if known else "estimated from its file")

    def _record(self, kind: str, stage: Stage) -> None:
        used = self.used
        self.events.append(PoolEvent(kind, stage, used))
        self.stats.peak_used = max(self.stats.peak_used, used)

    def _evict_until(self, extra: int, keep: Stage) -> None:
        if self.budget is None:
            return
        while self.used + extra > self.budget:
            victim = next((s for s in self._resident if s is not keep), None)
            if victim is None:
                return
            self.runners[victim].unload()
            del self._resident[victim]
            self.stats.evictions += 1
            self._record("evict", victim)

    def acquire(self, stage: Stage) -> Runner:
        """The runner of ``stage``, loaded; the most recently used from now on."""
        stage = Stage(stage)
        runner = self.runners[stage]
        if stage in self._resident:
            self._resident.move_to_end(stage)
            return runner
        need = self.footprint(stage)
        if self.budget is not None and need > self.budget:
            raise self._too_big(stage, need, "estimated")
        self._evict_until(need, keep=stage)
        runner.load()
        # resident-memory growth at a reload can miss memory the allocator reuses from the last unload:
        # account the largest footprint seen for this stage (this pool's, or the cache's), never less
        seen = max(self.stats.footprints.get(stage, 0), self.cache.get(runner) or 0)
        footprint = max(int(runner.footprint), seen)
        self.stats.footprints[stage] = footprint
        self.cache.put(runner, footprint)
        if self.budget is not None and footprint > self.budget:
            runner.unload()
            raise self._too_big(stage, footprint, "measured at load")
        self._resident[stage] = None
        # a footprint above the estimate: make room before this load counts as done
        self._resident.move_to_end(stage)
        self._evict_until(0, keep=stage)
        self.stats.loads[stage] += 1
        self._record("load", stage)
        return runner

    def refresh(self, stage: Stage) -> None:
        """After a run: a runner whose footprint grew (TensorRT sizes activations for the shapes it runs)
        is accounted at the larger size, evicting others to stay within the budget."""
        stage = Stage(stage)
        runner = self.runners[stage]
        if stage not in self._resident or int(runner.footprint) <= self.stats.footprints.get(stage, 0):
            return
        self.stats.footprints[stage] = int(runner.footprint)
        self.cache.put(runner, int(runner.footprint))
        self._evict_until(0, keep=stage)
        self._record("grow", stage)

    def release(self, stage: Stage) -> None:
        """Unload ``stage`` now (not counted as a swap)."""
        if stage in self._resident:
            self.runners[stage].unload()
            del self._resident[stage]

    def close(self) -> None:
        for s in list(self._resident):
            self.release(s)
