"""The queue and the one inference thread that owns the ``Inpainter``.

A request takes a place in the queue when it arrives (``admit``; a full queue or a draining server answers
503 at once), is prepared off the event loop, then ``submit``-ted. The inference thread gathers waiting
jobs, up to ``max_batch``, waiting at most ``batch_wait`` after the oldest arrived, and runs them as one
``Inpainter.run``: stage-major, so a budget that holds one stage at a time costs one load per stage per
batch. Each image still runs alone through each stage, so its result does not depend on its batch.

A job whose request gives up (its deadline passed, its client left) leaves the queue at once, or, when its
batch is already running, the run before its next stage (``progress`` sets its ``Cancelled`` error).

Health: a stage that fails with an engine, checkpoint, budget or backend error is *failing* and the server
not ready, until an item runs through it again or, while idle, a reload of it succeeds (every
``probe_interval`` seconds).
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from trt_inpaint.errors import Cancelled, EngineError, InputError, TrtInpaintError
from trt_inpaint.export.spec import Stage, pipeline_stages
from trt_inpaint.runtime.workitem import WorkItem
from trt_inpaint.serve.config import ServeConfig
from trt_inpaint.serve.malloc import Malloc
from trt_inpaint.serve.metrics import Metrics
from trt_inpaint.serve.problems import Problem


class JobState(enum.Enum):
    ADMITTED = "admitted"  # has a place in the queue, being read and prepared
    QUEUED = "queued"  # waiting for a batch
    RUNNING = "running"
    DONE = "done"
    GONE = "gone"  # its request gave up (or never needed a run)


@dataclass(eq=False)
class Job:
    deadline: float  # on the batcher's clock
    item: WorkItem | None = None
    state: JobState = JobState.ADMITTED
    enqueued: float = 0.0
    started: float | None = None  # when its batch began
    batch_size: int = 0
    cancelled: str | None = None  # why its request gave up
    future: Future = field(default_factory=Future)  # set to the job itself when its batch is done

    @property
    def queue_seconds(self) -> float:
        return 0.0 if self.started is None else self.started - self.enqueued


class ServerState(str, enum.Enum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"


class Batcher:
    def __init__(self, inpainter, config: ServeConfig, metrics: Metrics | None = None, clock=time.monotonic):
        self.inpainter = inpainter
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._waiting = 0  # jobs ADMITTED or QUEUED
        self._running = 0
        self._stopping = False
        self.state = ServerState.LOADING
        self.failing: dict[str, str] = {}  # stage -> why it failed
        self.batches = 0
        self._pool: dict = {}  # the pool's numbers, refreshed by the inference thread
        self._thread = threading.Thread(target=self._loop, name="trt-inpaint-inference", daemon=True)
        self.malloc = Malloc()

    # ---- the event loop's side ----------------------------------------------------------------------

    def start(self) -> None:
        self.malloc.keep_large_blocks_apart()
        self._refresh()
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self.state is ServerState.READY and not self.failing

    def not_ready_reason(self) -> str | None:
        if self.state is ServerState.LOADING:
            return "engines are loading"
        if self.state in (ServerState.DRAINING, ServerState.STOPPED):
            return "the server is shutting down"
        if self.failing:
            return "; ".join(f"stage {s} failing: {why}" for s, why in sorted(self.failing.items()))
        return None

    def admit(self) -> Job:
        """A place in the queue for a request that just arrived, or 503 at once."""
        retry = {"Retry-After": str(self.config.retry_after)}
        with self._cond:
            if self.state in (ServerState.DRAINING, ServerState.STOPPED):
                raise Problem(503, "the server is shutting down", retry)
            if self._waiting >= self.config.max_queue:
                raise Problem(503, f"queue full ({self.config.max_queue} requests waiting)", retry)
            self._waiting += 1
            return Job(self.clock() + self.config.request_timeout)

    def submit(self, job: Job, item: WorkItem) -> None:
        with self._cond:
            if job.state is not JobState.ADMITTED:
                return
            job.item, job.state, job.enqueued = item, JobState.QUEUED, self.clock()
            self._queue.append(job)
            self._cond.notify_all()

    def withdraw(self, job: Job, reason: str | None = None) -> None:
        """The request is done with this job: release its place; a running one leaves its batch."""
        with self._cond:
            if job.state is JobState.QUEUED:
                self._queue.remove(job)
            if job.state in (JobState.ADMITTED, JobState.QUEUED):
                self._waiting -= 1
                job.state = JobState.GONE
            if job.state is JobState.RUNNING and reason:
                job.cancelled = reason
        if reason and self.metrics is not None and job.state is not JobState.DONE:
            self.metrics.dropped.labels(reason).inc()

    def drain(self) -> None:
        """Refuse new requests from now on (503); the ones admitted go on."""
        with self._cond:
            if self.state is not ServerState.STOPPED:
                self.state = ServerState.DRAINING

    def idle(self) -> bool:
        with self._cond:
            return self._waiting == 0 and self._running == 0

    def stop(self, timeout: float | None = None) -> bool:
        """Let the thread finish what is queued, then end it. True when it ended within ``timeout``."""
        with self._cond:
            self._stopping = True
            self.state = ServerState.STOPPED
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> dict:
        with self._cond:
            return {
                **self._pool,
                "waiting": self._waiting,
                "running": self._running,
                "ready": self.ready,
                "state": self.state.value,
                "reason": self.not_ready_reason(),
                "failing": dict(self.failing),
                "batches": self.batches,
            }

    # ---- the inference thread -----------------------------------------------------------------------

    def _refresh(self) -> None:
        inp = self.inpainter
        stats = inp.stats()
        pool = {
            **stats,
            "stages": [s.value for s in inp.stages],
            "resident": [s.value for s in inp.pool.resident],
            "resident_bytes": inp.pool.used,
        }
        with self._cond:
            self._pool = pool

    def _loop(self) -> None:
        if self.config.preload:
            self._load(list(self.inpainter.stages))
        with self._cond:
            if self.state is ServerState.LOADING:
                self.state = ServerState.READY
        while True:
            batch = self._next()
            if batch is None:
                break
            if batch:
                self._run(batch)
            elif self.failing:
                self._load([Stage(s) for s in sorted(self.failing)])

    def _load(self, stages: list[Stage]) -> None:
        for stage in stages:
            try:
                self.inpainter.pool.acquire(stage)
            except TrtInpaintError as e:
                with self._cond:
                    self.failing[stage.value] = str(e)
            else:
                with self._cond:
                    self.failing.pop(stage.value, None)
        self._refresh()

    def _next(self) -> list[Job] | None:
        """The next batch; [] after an idle wait while a stage is failing (time to probe); None: stop."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                if self.failing:
                    if not self._cond.wait(self.config.probe_interval) and not self._queue:
                        return []
                else:
                    self._cond.wait()
            until = self._queue[0].enqueued + self.config.batch_wait
            while len(self._queue) < self.config.max_batch and not self._stopping:
                left = until - self.clock()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[Job] = []
            now = self.clock()
            while self._queue and len(batch) < self.config.max_batch:
                job = self._queue.popleft()
                self._waiting -= 1
                if now > job.deadline:  # its request answers 504 on its own clock
                    job.state = JobState.GONE
                    continue
                job.state = JobState.RUNNING
                batch.append(job)
            self._running = len(batch)
            return batch

    def _progress(self, batch: list[Job]):
        def progress(phase: str, n: int) -> None:
            now = self.clock()
            for job in batch:
                gave_up = job.cancelled or ("deadline" if now > job.deadline else None)
                if gave_up and job.item.pending:
                    job.item.error = Cancelled(f"request gave up ({gave_up}) during stage {phase}")

        return progress

    def _run(self, batch: list[Job]) -> None:
        items = [job.item for job in batch]
        t0 = self.clock()
        for job in batch:
            job.started, job.batch_size = t0, len(batch)
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(batch))
            for job in batch:
                self.metrics.queue_seconds.observe(job.queue_seconds)
        try:
            self.inpainter.run(items, progress=self._progress(batch))
        except Exception as e:  # run() reports per item; anything else is a fault of the backend or a bug
            error = e if isinstance(e, TrtInpaintError) else EngineError(f"inference failed: {e!r}")
            for item in items:
                if item.pending:
                    item.error = error
        if self.metrics is not None:
            self.metrics.batch_seconds.observe(self.clock() - t0)
        self._health(items)
        self._refresh()
        with self._cond:
            self._running = 0
            self.batches += 1
            for job in batch:
                job.state = JobState.DONE
        for job in batch:
            try:
                job.future.set_result(job)
            except InvalidStateError:
                pass
        with self._cond:
            idle = not self._queue
        self.malloc.trim(force=idle)

    def _health(self, items: list[WorkItem]) -> None:
        with self._cond:
            for item in items:
                stages = pipeline_stages(item.pipeline)
                if item.result is not None:
                    for s in stages:
                        self.failing.pop(s.value, None)
                elif item.error is not None and not isinstance(item.error, InputError | Cancelled):
                    stage = next((s for s in stages if s.value not in item.stage_seconds), stages[-1])
                    self.failing[stage.value] = str(item.error)
