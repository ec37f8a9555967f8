"""Batching, the queue, deadlines and disconnects on real servers (subprocesses on loopback)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.serve.conftest import ONE_STAGE_BUDGET, metric, metric_samples, wait_for
from tests.serve.helpers import sample
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.samples import sample_pairs


def post(client: httpx.Client, k: int, **fields) -> httpx.Response:
    img, mask = sample(k)
    files = {"image": ("i", img.read_bytes()), "mask": ("m", mask.read_bytes())}
    return client.post("/api/v1/inpaint", files=files, data={k: str(v) for k, v in fields.items()})


def test_concurrent_requests_are_batched_under_a_one_stage_budget(start_server, big_engines, tmp_path):
    server = start_server([
        "--engines", big_engines, "--backend", "ort-cpu", "--memory-budget", ONE_STAGE_BUDGET,
        "--max-batch", "4", "--batch-wait-ms", "300",
    ])  # fmt: skip
    n, clients = 16, 8
    # what the CLI's own path writes for each sample (Inpainter.inpaint_files; default budget)
    pairs = sample_pairs()
    with Inpainter(engines=big_engines, backend="ort-cpu") as inp:
        report = inp.inpaint_files([(i, m, tmp_path / i.name) for i, m in pairs])
    assert not report.failed
    expected = [(tmp_path / i.name).read_bytes() for i, _ in pairs]

    def one(k: int) -> tuple[int, httpx.Response]:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            return k, post(c, k % len(pairs))

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(n)))
    for k, r in answers:
        assert r.status_code == 200, r.text
        assert r.content == expected[k % len(pairs)], f"request {k}: not the CLI's result"
    sizes = [int(r.headers["x-inpaint-batch-size"]) for _, r in answers]
    assert max(sizes) > 1 and max(sizes) <= 4

    with httpx.Client(base_url=server.url) as c:
        samples = metric_samples(c)
        status = c.get("/api/v1/status").json()
    batches = metric(samples, "trt_inpaint_batch_size_count")
    singles = metric(samples, "trt_inpaint_batch_size_bucket", le="1.0")
    assert batches - singles >= 1, "no batch of more than one request in the metrics"
    assert metric(samples, "trt_inpaint_batch_size_sum") == n
    loads = {s.labels["stage"]: s.value for s in samples if s.name == "trt_inpaint_stage_loads_total"}
    assert len(loads) == 5 and all(1 <= v <= n // 2 for v in loads.values()), loads
    assert loads["lama"] == batches  # one load per stage per batch, not per request
    assert metric(samples, "trt_inpaint_stage_swaps_total") > 0
    footprints = [s["footprint_bytes"] for s in status["stages"]]
    assert status["peak_pool_bytes"] <= status["budget_bytes"] < sum(sorted(footprints)[-2:]), (
        "the budget must hold one stage and not the two largest"
    )


def test_full_queue_answers_503_at_once_and_deadlines_504(start_server, serve_engines):
    server = start_server([
        "--engines", serve_engines, "--backend", "ort-cpu", "--models", "lama",
        "--max-queue", "1", "--batch-wait-ms", "2500", "--request-timeout", "1.5",
    ])  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=30) as c:
        first: list = []
        t = threading.Thread(target=lambda: first.append(post(c, 0)))
        t0 = time.monotonic()
        t.start()
        wait_for(lambda: c.get("/api/v1/status").json()["queue"]["waiting"] == 1, 10, "the first to queue")
        t1 = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=30) as c2:
            r = post(c2, 1)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "queue full" in r.json()["error"]
        assert time.monotonic() - t1 < 1.0, "a full queue must answer at once"
        t.join(30)
        assert first[0].status_code == 504 and "timeout" in first[0].json()["error"]
        assert 1.4 < time.monotonic() - t0 < 2.5  # at its deadline, not when the batch would have run
        time.sleep(1.5)  # past the batch wait: the expired job must not have run
        s = metric_samples(c)
        assert metric(s, "trt_inpaint_dropped_requests_total", reason="deadline") == 1
        assert c.get("/api/v1/status").json()["queue"]["batches"] == 0
        assert metric(s, "trt_inpaint_stage_loads_total") == 0
        assert c.get("/v2/health/ready").status_code == 200


def test_a_client_that_leaves_is_dropped_and_the_others_finish(start_server, serve_engines):
    server = start_server([
        "--engines", serve_engines, "--backend", "ort-cpu", "--models", "lama", "--batch-wait-ms", "1500",
    ])  # fmt: skip
    answers: list = []

    def patient():
        with httpx.Client(base_url=server.url, timeout=30) as c:
            answers.append(post(c, 0))

    t = threading.Thread(target=patient)
    t.start()
    with httpx.Client(base_url=server.url, timeout=0.4) as c:
        with pytest.raises(httpx.ReadTimeout):
            post(c, 1)  # leaves after 0.4 s, while both wait for the batch
    t.join(30)
    assert answers[0].status_code == 200 and answers[0].headers["x-inpaint-batch-size"] == "1"
    with httpx.Client(base_url=server.url) as c:
        wait_for(
            lambda: metric(metric_samples(c), "trt_inpaint_dropped_requests_total", reason="disconnect") == 1,
            5, "the disconnect to be counted",
        )  # fmt: skip
        assert metric(metric_samples(c), "trt_inpaint_batch_size_sum") == 1
