"""What the routes share: the Inpainter, the batcher, the metrics and the options of one app."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import Request

from trt_inpaint.serve.batcher import Batcher
from trt_inpaint.serve.config import ServeConfig
from trt_inpaint.serve.metrics import Metrics
from trt_inpaint.serve.service import Service


@dataclass
class ServerParts:
    inpainter: object
    config: ServeConfig
    batcher: Batcher
    metrics: Metrics
    service: Service
    started: float = field(default_factory=time.monotonic)


def parts(request: Request) -> ServerParts:
    return request.app.state.parts
