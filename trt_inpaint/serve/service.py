"""One inpaint request end to end, shared by ``/api/v1/inpaint`` and the v2 ``infer`` route:

    sizes and formats from the headers -> prepare (a worker thread) -> queue -> the batch runs
    -> encode (a worker thread) -> ``Answer``

The event loop never decodes, runs or encodes. While a request waits for its batch it watches its deadline
and its client: past the deadline it answers 504, a client that leaves drops its work; either way the job
leaves the queue or its running batch and the others go on.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.requests import Request

from trt_inpaint.errors import TrtInpaintError
from trt_inpaint.serve.batcher import Batcher, Job
from trt_inpaint.serve.config import ServeConfig
from trt_inpaint.serve.problems import Problem, problem_of
from trt_inpaint.serve.sniff import BadHeader, Header, ImageFormat, NotAnImage, sniff
from trt_inpaint.serve.uploads import Upload

CLIENT_CLOSED = 499  # nginx's code for a request whose client went away (never sent: there is no one)


@dataclass
class Answer:
    data: bytes
    format: ImageFormat
    seed: int
    models: str
    queue_seconds: float
    stage_seconds: float
    batch_size: int  # 0: nothing ran (empty mask)
    note: str | None = None

    def parameters(self) -> dict:
        return {
            "seed": self.seed,
            "models": self.models,
            "queue_seconds": round(self.queue_seconds, 6),
            "stage_seconds": round(self.stage_seconds, 6),
            "batch_size": self.batch_size,
        }

    def headers(self) -> dict[str, str]:
        h = {f"X-Inpaint-{k.replace('_', '-').title()}": str(v) for k, v in self.parameters().items()}
        if self.note:
            h["X-Inpaint-Note"] = self.note.encode("ascii", "replace").decode()
        return h


# the answer's headers, for the OpenAPI description and CORS
ANSWER_HEADERS = {
    "X-Inpaint-Seed": "seed of MAT's random inputs used",
    "X-Inpaint-Models": "the models that ran",
    "X-Inpaint-Queue-Seconds": "seconds from queueing to the start of its batch",
    "X-Inpaint-Stage-Seconds": "seconds this image spent in the stages",
    "X-Inpaint-Batch-Size": "requests in its batch (0: empty mask, nothing ran)",
}


class Service:
    """Decoding and encoding run in a small pool of its own: a few threads (not one per request), and
    unlike AnyIO's idle worker threads they keep no reference to the last work item they handled."""

    def __init__(self, inpainter, batcher: Batcher, config: ServeConfig):
        self.inpainter = inpainter
        self.batcher = batcher
        self.config = config
        self.cpu = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="trt-inpaint-cpu")

    async def _off_loop(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.cpu, fn, *args)

    def close(self) -> None:
        self.cpu.shutdown(wait=False, cancel_futures=True)

    def check(self, data: bytes, field: str) -> Header:
        """Format and size from the header, against the limits, before anything is decoded."""
        if not data:
            raise Problem(400, f"{field}: empty file")
        try:
            head = sniff(data)
        except NotAnImage as e:
            raise Problem(415, f"{field}: {e}") from None
        except BadHeader as e:
            raise Problem(400, f"{field}: {e}") from None
        if head.pixels > self.config.max_pixels:
            raise Problem(
                413,
                f"{field}: {head.width}x{head.height} is {head.pixels} pixels, more than the limit of "
                f"{self.config.max_pixels} (--max-pixels)",
            )
        return head

    async def run(self, request: Request, job: Job, upload: Upload) -> Answer:
        image = self.check(upload.image, "image")
        self.check(upload.mask, "mask")
        fmt = upload.fields.format or image.format
        overrides = upload.fields.overrides()
        inp = self.inpainter
        try:
            item = await self._off_loop(
                lambda: inp.prepare_bytes(upload.image, upload.mask, suffix=image.format.suffix, **overrides)
            )
        except TrtInpaintError as e:
            raise problem_of(e, self.config.retry_after) from None
        upload.image = upload.mask = b""  # the item holds what it needs
        if self.batcher.clock() > job.deadline:
            self._gave_up(job)
        if item.needs_run:
            self.batcher.submit(job, item)
            await self._wait(request, job)
            if item.error is not None:
                raise problem_of(item.error, self.config.retry_after)
        else:
            self.batcher.withdraw(job)
        try:
            enc = await self._off_loop(inp.encode, item, fmt.suffix)
        except TrtInpaintError as e:
            raise problem_of(e, self.config.retry_after) from None
        return Answer(
            enc.data,
            ImageFormat.of_suffix(enc.suffix),
            item.seed,
            item.pipeline.value,
            job.queue_seconds,
            sum(item.stage_seconds.values()),
            job.batch_size,
            enc.note,
        )

    def _gave_up(self, job: Job) -> None:
        self.batcher.withdraw(job, "deadline")
        raise Problem(504, f"no answer within the request timeout of {self.config.request_timeout:g} s")

    async def _wait(self, request: Request, job: Job) -> None:
        done = asyncio.wrap_future(job.future)
        left = asyncio.ensure_future(_disconnect(request))
        try:
            timeout = max(0.0, job.deadline - self.batcher.clock())
            finished, _ = await asyncio.wait(
                {done, left}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if done in finished:
                return
            if left in finished:
                self.batcher.withdraw(job, "disconnect")
                raise Problem(CLIENT_CLOSED, "the client closed the request")
            self._gave_up(job)
        finally:
            left.cancel()


async def _disconnect(request: Request) -> None:
    """Returns when the client goes away (the body has been read: the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
