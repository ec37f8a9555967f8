"""Prometheus metrics, one registry per app (several apps can live in one process, e.g. in tests).

Names follow Prometheus' rules: one prefix ``trt_inpaint_``, base units (seconds, bytes), ``_total`` on
counters, histograms for durations. The pool's numbers (loads, swaps, resident bytes) are read at scrape
time from the batcher's snapshot, which the inference thread refreshes after every batch.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "trt_inpaint_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
INFERENCE_ROUTES = ("/api/v1/inpaint", "/v2/models/{name}/infer")  # counted in ``served`` (the status page)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class PoolCollector:
    """Loads and swaps per stage, resident bytes, budget, queue and readiness from ``snapshot()``."""

    def __init__(self, snapshot: Callable[[], dict]):
        self.snapshot = snapshot

    def describe(self):
        return []

    def collect(self):
        s = self.snapshot()
        loads = CounterMetricFamily(PREFIX + "stage_loads", "Stage loads into the pool", labels=["stage"])
        for stage, n in sorted(s["loads"].items()):
            loads.add_metric([stage], n)
        yield loads
        yield CounterMetricFamily(
            PREFIX + "stage_swaps", "Stages evicted to fit the budget", value=s["swaps"]
        )
        resident = GaugeMetricFamily(PREFIX + "stage_resident", "1 while a stage is loaded", labels=["stage"])
        for stage in s["stages"]:
            resident.add_metric([stage], 1.0 if stage in s["resident"] else 0.0)
        yield resident
        yield GaugeMetricFamily(
            PREFIX + "pool_resident_bytes", "Bytes held by resident stages", value=s["resident_bytes"]
        )
        if s["budget_bytes"] is not None:
            yield GaugeMetricFamily(PREFIX + "pool_budget_bytes", "Memory budget", value=s["budget_bytes"])
        yield GaugeMetricFamily(
            PREFIX + "queue_length", "Requests admitted, not yet running", value=s["waiting"]
        )
        yield GaugeMetricFamily(
            PREFIX + "running_requests", "Requests in the running batch", value=s["running"]
        )
        yield GaugeMetricFamily(PREFIX + "ready", "1 when ready to serve", value=1.0 if s["ready"] else 0.0)


class Metrics:
    def __init__(self, max_batch: int, snapshot: Callable[[], dict]):
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            PREFIX + "requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            PREFIX + "request_duration_seconds", "Time to answer, by route", ["route"], buckets=_SECONDS,
            registry=r,
        )  # fmt: skip
        self.queue_seconds = Histogram(
            PREFIX + "queue_duration_seconds", "From queueing to the start of its batch", buckets=_SECONDS,
            registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            PREFIX + "batch_duration_seconds", "Time of one batch through the stages", buckets=_SECONDS,
            registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            PREFIX + "batch_size", "Requests per batch", buckets=tuple(range(1, max_batch + 1)), registry=r
        )
        self.dropped = Counter(
            PREFIX + "dropped_requests", "Requests given up before their answer, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        r.register(PoolCollector(snapshot))
        self.served: collections.Counter = collections.Counter()  # inference requests by status (as text)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts every HTTP request by route template and status, and times it."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "other"
            self.metrics.requests.labels(route, str(status)).inc()
            if route in INFERENCE_ROUTES:
                self.metrics.served[str(status)] += 1
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - t0)
