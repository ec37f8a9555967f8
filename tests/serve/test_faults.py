"""Faults on real server processes: SIGTERM while requests are in flight, an engine file that turns bad
while serving (and comes back)."""

from __future__ import annotations

import os
import shutil
import threading
import time

import httpx

from tests.serve.conftest import ONE_STAGE_BUDGET, wait_for
from tests.serve.helpers import sample


def post(url: str, k: int = 0, timeout: float = 60) -> httpx.Response:
    img, mask = sample(k)
    files = {"image": ("i", img.read_bytes()), "mask": ("m", mask.read_bytes())}
    return httpx.post(f"{url}/api/v1/inpaint", files=files, timeout=timeout)


def test_sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_0(start_server, serve_engines):
    server = start_server([
        "--engines", serve_engines, "--backend", "ort-cpu", "--batch-wait-ms", "1500",
        "--graceful-timeout", "20",
    ])  # fmt: skip
    answers: list = []
    threads = [threading.Thread(target=lambda k=k: answers.append(post(server.url, k))) for k in range(3)]
    for t in threads:
        t.start()
    status = lambda: httpx.get(f"{server.url}/api/v1/status").json()  # noqa: E731
    wait_for(lambda: status()["queue"]["waiting"] == 3, 10, "three requests in flight")
    t0 = time.monotonic()
    server.proc.send_signal(15)
    ready = wait_for(
        lambda: (r := httpx.get(f"{server.url}/v2/health/ready")).status_code == 503 and r, 5, "not ready"
    )
    assert "shutting down" in ready.json()["reason"]
    late = post(server.url, 4)
    assert late.status_code == 503 and late.headers["retry-after"] and "shutting down" in late.json()["error"]
    for t in threads:
        t.join(30)
    assert [r.status_code for r in answers] == [200, 200, 200], [r.text for r in answers]
    assert server.proc.wait(20) == 0
    assert time.monotonic() - t0 < 20


def test_a_bad_engine_file_fails_its_requests_and_readiness_until_it_is_back(
    start_server, big_engines, tmp_path
):
    engines = tmp_path / "engines"
    shutil.copytree(big_engines, engines)
    server = start_server([
        "--engines", engines, "--backend", "ort-cpu", "--memory-budget", ONE_STAGE_BUDGET,
    ])  # fmt: skip
    assert post(server.url).status_code == 200  # each stage evicts the one before: lama is not resident
    lama = engines / "lama.fp32.onnx"
    good = lama.read_bytes()
    lama.write_bytes(b"these bytes are not an ONNX model")  # unreadable as a model from now on
    try:
        r = post(server.url)
        assert r.status_code == 500, r.headers
        assert "lama.fp32.onnx" in r.json()["error"] and "cannot load" in r.json()["error"]
        ready = httpx.get(f"{server.url}/v2/health/ready")
        assert ready.status_code == 503 and "stage lama failing" in ready.json()["reason"]
        assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
        status = httpx.get(f"{server.url}/api/v1/status").json()
        assert not status["ready"] and "lama.fp32.onnx" in status["reason"]
        assert server.proc.poll() is None
    finally:
        tmp = lama.with_suffix(".tmp")
        tmp.write_bytes(good)
        os.replace(tmp, lama)
    # back: a reload while idle turns the server ready again, and requests succeed
    wait_for(lambda: httpx.get(f"{server.url}/v2/health/ready").status_code == 200, 15, "ready again")
    assert post(server.url).status_code == 200
