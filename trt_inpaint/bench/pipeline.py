"""Runs a spec pipeline on runners (the runtime's contract), timing each stage call."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from trt_inpaint.bench.timing import clock
from trt_inpaint.export.spec import PIPELINES, Pipeline, Role, Stage, random_feeds, spec
from trt_inpaint.runtime.backends.base import Runner

# called around each stage call: hook(stage, "start" | "end")
StageHook = Callable[[Stage, str], None]


def noise_for(pipeline: Pipeline, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for call in PIPELINES[pipeline]:
        out.update(random_feeds(call.stage, batch, seed))
    return out


def run_pipeline(
    runners: Mapping[Stage, Runner],
    pipeline: Pipeline,
    image: np.ndarray,
    mask: np.ndarray,
    noise: Mapping[str, np.ndarray],
    times: dict[Stage, float] | None = None,
    hook: StageHook | None = None,
) -> np.ndarray:
    """The final output; ``times`` receives seconds per stage call (runner.run; the runners are loaded)."""
    results: dict[str, np.ndarray] = {"image": image, "mask": mask}
    for call in PIPELINES[pipeline]:
        s = spec(call.stage)
        feeds = {}
        for t in s.inputs:
            if t.name in call.feeds:
                feeds[t.name] = results[call.feeds[t.name]]
            elif t.role is Role.NOISE:
                feeds[t.name] = noise[t.name]
        if hook:
            hook(call.stage, "start")
        t0 = clock()
        out = runners[call.stage].run(feeds)
        dt = clock() - t0
        if hook:
            hook(call.stage, "end")
        if times is not None:
            times[call.stage] = dt
        results[s.name] = out[s.output_names[0]]
    return results[PIPELINES[pipeline][-1].stage.value]
