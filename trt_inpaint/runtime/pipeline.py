"""Stage-major execution of ``spec.PIPELINES`` over many images: every image through one stage, then the next.

A folder of N images costs one load per stage, not N. Each image runs alone (batch 1), so its result does
not depend on the others. Intermediates live in an ``IntermediateStore`` and are dropped after their last
consumer. MAT's random inputs come from ``spec.random_feeds(stage, 1, seed)``: the same for every image.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trt_inpaint.errors import InputError, TrtInpaintError
from trt_inpaint.export.spec import PIPELINES, Pipeline, Role, Stage, random_feeds, spec
from trt_inpaint.runtime.pool import EnginePool
from trt_inpaint.runtime.store import IntermediateStore

Progress = Callable[[str, int], None]  # (phase description, items done since the last call)


def _key(item: str, source: str) -> str:
    return f"{item}\x00{source}"


def put_inputs(store: IntermediateStore, item: str, image: np.ndarray, mask: np.ndarray) -> None:
    """Working inputs of one image: image (1, 3, H, W) and mask (1, 1, H, W), float32."""
    store.put(_key(item, "image"), image)
    store.put(_key(item, "mask"), mask)


def output_key(pipeline: Pipeline, item: str) -> str:
    return _key(item, PIPELINES[Pipeline(pipeline)][-1].stage.value)


@dataclass
class RunReport:
    stage_seconds: dict[Stage, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # item -> one-line error


def _last_uses(pipeline: Pipeline) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, call in enumerate(PIPELINES[pipeline]):
        for src in call.feeds.values():
            last[src] = i
    return last


def run_stage_major(
    pool: EnginePool,
    pipeline: Pipeline,
    items: list[str],
    store: IntermediateStore,
    seed: int,
    progress: Progress | None = None,
) -> RunReport:
    """Run every call of the pipeline over ``items`` (inputs already in ``store``), stage by stage.

    Afterwards ``store`` holds ``output_key(pipeline, item)`` for each item that did not fail. A stage error
    for one item (an engine rejecting its size, ...) fails that item only; a pool error stops everything.
    """
    pipeline = Pipeline(pipeline)
    calls = PIPELINES[pipeline]
    last = _last_uses(pipeline)
    report = RunReport()
    alive = list(items)
    for i, call in enumerate(calls):
        s = spec(call.stage)
        if not alive:
            break
        runner = pool.acquire(call.stage)
        noise = random_feeds(call.stage, 1, seed)
        start = time.perf_counter()
        for item in list(alive):
            try:
                feeds = dict(noise)
                for t in s.inputs:
                    if t.role is not Role.NOISE:
                        feeds[t.name] = store.get(_key(item, call.feeds[t.name]))
                h, w = feeds[s.inputs[0].name].shape[-2:]
                try:
                    s.check_size(int(h), int(w))
                except ValueError as e:
                    raise InputError(str(e)) from None
                out = runner.run(feeds)[s.output_names[0]]
                store.put(_key(item, s.name), out)
            except TrtInpaintError as e:
                report.failures[item] = str(e)
                alive.remove(item)
                for src in ("image", "mask", *(c.stage.value for c in calls[: i + 1])):
                    store.drop(_key(item, src))
                continue
            for src, j in last.items():
                if j == i:
                    store.drop(_key(item, src))
            if progress:
                progress(f"{s.name}", 1)
        report.stage_seconds[call.stage] = time.perf_counter() - start
    return report
