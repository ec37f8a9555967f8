"""Stage-major execution of work items: every item through one stage, then the next.

Items may ask for different pipelines (``spec.PIPELINES``) and seeds; stages run in the order of
``spec.STAGES``, each loaded once per call for all the items that need it, so N images cost one load per
stage, not N. Each image runs alone (batch 1), so its result does not depend on the others. Intermediates
live in an ``IntermediateStore`` and are dropped after their last consumer. MAT's random inputs come from
``spec.random_feeds(stage, 1, item.seed)``.

Errors keep their type: a stage that cannot be loaded (``EngineError``, ``BudgetError``, ...) fails every
item that needs it with that error; an error while one item runs fails that item only. Other items go on.
An item whose ``error`` its owner sets while the run goes on (from ``progress``: a request that gave up)
leaves the run before its next stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from trt_inpaint.errors import InputError, TrtInpaintError
from trt_inpaint.export.spec import (
    PIPELINES,
    STAGES,
    WORKING_INPUTS,
    Role,
    Stage,
    StageCall,
    random_feeds,
    spec,
)
from trt_inpaint.runtime.pool import EnginePool
from trt_inpaint.runtime.store import IntermediateStore
from trt_inpaint.runtime.workitem import WorkItem

Progress = Callable[[str, int], None]  # (phase description, items done since the last call)
# where an item's working inputs are: (image, mask); default: the item's own fields
Inputs = Callable[[int, WorkItem], tuple[np.ndarray, np.ndarray]]
# what to do with an item's final output (default: item.result = output)
Sink = Callable[[int, WorkItem, np.ndarray], None]


@dataclass
class RunReport:
    stage_seconds: dict[Stage, float] = field(default_factory=dict)


def _own_inputs(i: int, item: WorkItem) -> tuple[np.ndarray, np.ndarray]:
    return item.image, item.mask


def _set_result(i: int, item: WorkItem, out: np.ndarray) -> None:
    item.result = out


def intermediate_key(i: int, source: str) -> str:
    """The store key of item ``i``'s intermediate ``source`` (a stage's name)."""
    return f"{i}\x00{source}"


def _calls(item: WorkItem) -> dict[Stage, StageCall]:
    return {c.stage: c for c in PIPELINES[item.pipeline]}


def _last_uses(item: WorkItem) -> dict[str, Stage]:
    """Each source (image, mask, stage name) -> the last stage of the item's pipeline that reads it."""
    last: dict[str, Stage] = {}
    for call in PIPELINES[item.pipeline]:
        for src in call.feeds.values():
            last[src] = call.stage
    return last


def _fail(item: WorkItem, i: int, error: TrtInpaintError, store: IntermediateStore) -> None:
    item.error = error
    for stage in STAGES:
        store.drop(intermediate_key(i, stage.value))


def run_items(
    pool: EnginePool,
    items: Sequence[WorkItem],
    store: IntermediateStore,
    progress: Progress | None = None,
    inputs: Inputs = _own_inputs,
    sink: Sink = _set_result,
    stages: Collection[Stage] = STAGES,
) -> RunReport:
    """Run every pending item through its pipeline, stage-major; fill ``result`` (via ``sink``) or ``error``.

    ``store`` holds the intermediates (it may spill to disk); it is empty of this call's keys afterwards.
    ``stages``: run only these (a cluster's staged layout runs one per actor): the intermediates of earlier
    stages must then be in ``store`` (``intermediate_key``), and those a later stage needs stay there.
    """
    report = RunReport()
    alive = {i: it for i, it in enumerate(items) if it.pending}
    calls = {i: _calls(it) for i, it in alive.items()}
    last = {i: _last_uses(it) for i, it in alive.items()}
    for stage in (s for s in STAGES if s in stages):
        users = [i for i in alive if stage in calls[i]]
        if not users:
            continue
        try:
            runner = pool.acquire(stage)
        except TrtInpaintError as e:  # this stage cannot be loaded: every item that needs it fails
            for i in users:
                _fail(alive.pop(i), i, e, store)
            continue
        s = spec(stage)
        noise: dict[int, dict[str, np.ndarray]] = {}
        start = time.perf_counter()
        for i in users:
            item, call = alive[i], calls[i][stage]
            if item.error is not None:  # set meanwhile by its owner (e.g. a server request that gave up)
                _fail(alive.pop(i), i, item.error, store)
                continue
            t0 = time.perf_counter()
            try:
                if item.seed not in noise:
                    noise[item.seed] = random_feeds(stage, 1, item.seed)
                feeds = dict(noise[item.seed])
                for t in s.inputs:
                    if t.role is not Role.NOISE:
                        src = call.feeds[t.name]
                        if src in WORKING_INPUTS:
                            feeds[t.name] = inputs(i, item)[WORKING_INPUTS.index(src)]
                        else:
                            feeds[t.name] = store.get(intermediate_key(i, src))
                h, w = feeds[s.inputs[0].name].shape[-2:]
                try:
                    s.check_size(int(h), int(w))
                except ValueError as e:
                    raise InputError(str(e), item.name) from None
                out = runner.run(feeds)[s.output_names[0]]
                pool.refresh(stage)
            except TrtInpaintError as e:
                _fail(alive.pop(i), i, e, store)
                continue
            item.stage_seconds[stage.value] = time.perf_counter() - t0
            if stage is PIPELINES[item.pipeline][-1].stage:
                sink(i, item, out)
                for st in calls[i]:
                    store.drop(intermediate_key(i, st.value))
                del alive[i]
            else:
                store.put(intermediate_key(i, stage.value), out)
                for src, user in last[i].items():
                    if user is stage:
                        store.drop(intermediate_key(i, src))
            if progress:
                progress(stage.value, 1)
        report.stage_seconds[stage] = time.perf_counter() - start
    return report
