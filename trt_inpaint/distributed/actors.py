"""The GPU step: actor classes that Ray Data keeps in pools (``map_batches(cls, compute=ActorPoolStrategy)``).

``InpaintActor`` (layout ``inpainter``): one Inpainter with all stages, its own engine pool and memory
budget; each batch runs stage-major through it. ``StageActor`` (layout ``staged``): an Inpainter that holds
one stage; the intermediates later stages need ride along in the rows.

An actor whose Inpainter cannot be made (no engines, backend unavailable, a stage over the budget) does not
die (Ray would retry it): it marks every row it gets with that typed error, and the driver stops the run
with it, as the embedded run stops on the same error.
"""

from __future__ import annotations

import os
import socket
import uuid

import numpy as np

from trt_inpaint.distributed.rows import Row, pack, unpack
from trt_inpaint.errors import TrtInpaintError
from trt_inpaint.export.spec import STAGES, Stage
from trt_inpaint.runtime.options import InpaintOptions


class _Actor:
    def __init__(self, options: InpaintOptions, hold: tuple[Stage, ...] | None = None):
        from trt_inpaint.runtime.api import Inpainter

        self.id = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.options = options
        self.inp = None
        self.fatal: TrtInpaintError | None = None
        try:
            self.inp = Inpainter(options, hold=hold)
        except TrtInpaintError as e:
            self.fatal = e

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = unpack(batch)
        live = [r for r in rows if r.fatal is None and r.item is not None and r.item.pending]
        if self.fatal is not None:
            for r in rows:
                r.fatal = r.fatal or self.fatal
        else:
            if live:
                self.run(live)
            if rows:
                rows[-1].workers.append((self.id, self.inp.stats()))
        for r in live:
            if not r.item.pending:  # done or failed: finishing needs neither working tensor
                r.item.image = r.item.mask = None
        return pack(rows)

    def run(self, live: list[Row]) -> None:
        raise NotImplementedError


class InpaintActor(_Actor):
    """Every stage of ``options.models``, stage-major over each batch."""

    def run(self, live: list[Row]) -> None:
        self.inp.run([r.item for r in live])


class StageActor(_Actor):
    """One stage; intermediates come in and go out in ``Row.carried``."""

    def __init__(self, options: InpaintOptions, stage: Stage):
        super().__init__(options, hold=(stage,))
        self.stage = Stage(stage)

    def run(self, live: list[Row]) -> None:
        from trt_inpaint.runtime.pipeline import intermediate_key, run_items
        from trt_inpaint.runtime.store import IntermediateStore

        opts = self.options
        with IntermediateStore(opts.host_cache, opts.spill_dir) as store:
            for i, r in enumerate(live):
                for source, array in r.carried.items():
                    store.put(intermediate_key(i, source), array)
            run_items(self.inp.pool, [r.item for r in live], store, stages=(self.stage,))
            for i, r in enumerate(live):
                keys = {s.value: intermediate_key(i, s.value) for s in STAGES}
                r.carried = {src: store.get(key) for src, key in keys.items() if key in store}
