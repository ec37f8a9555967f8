"""Latency statistics: warm-up excluded, N timed runs, median and p90; one-time costs kept apart."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Stats:
    """Seconds per call over ``n`` timed runs (warm-up excluded)."""

    n: int
    p50: float
    p90: float
    mean: float
    min: float
    max: float
    samples: tuple[float, ...] = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["samples"] = list(self.samples)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Stats:
        return cls(**{**d, "samples": tuple(d.get("samples", ()))})


def summarize(samples: list[float] | tuple[float, ...]) -> Stats:
    """p50/p90 (linear interpolation between order statistics) of a non-empty list of seconds."""
    if not samples:
        raise ValueError("no timing samples to summarize")
    a = np.asarray(samples, dtype=np.float64)
    p50, p90 = np.percentile(a, [50, 90])
    return Stats(
        len(a), float(p50), float(p90), float(a.mean()), float(a.min()), float(a.max()), tuple(samples)
    )


@dataclass
class OneTimeCosts:
    """Costs paid once per load, reported apart from steady-state latency (seconds)."""

    load_s: float | None = None  # engine / session / module load
    first_run_s: float | None = None  # first call after load (allocations, kernel selection)
    swap_in_s: list[float] = field(default_factory=list)  # reloads forced by the memory budget
    swap_out_s: list[float] = field(default_factory=list)  # evictions forced by the memory budget

    def to_dict(self) -> dict:
        return asdict(self)


def clock() -> float:
    return time.perf_counter()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    t0 = clock()
    out = fn()
    return clock() - t0, out


def measure(fn: Callable[[], object], warmup: int, runs: int) -> Stats:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed; return the statistics."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(max(0, warmup)):
        fn()
    return summarize([timed(fn)[0] for _ in range(runs)])
