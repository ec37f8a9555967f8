"""Fixtures for the server's tests: stand-in engines, a real server process on a free loopback port, an
HTTP client whose every answer is checked against the server's own OpenAPI description."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.standins import write_standins

URL_LINE = re.compile(r"serving on (http://\S+)")


@pytest.fixture(scope="session")
def serve_engines(tmp_path_factory) -> Path:
    """fp32 stand-ins of all five stages (milliseconds per image on ONNX Runtime CPU)."""
    return write_standins(tmp_path_factory.mktemp("serve_engines"))


class Server:
    """``trt-inpaint serve`` in a subprocess; its URL read from the line it prints at start-up."""

    def __init__(
        self, args: list[str], env: dict | None = None, log: Path | None = None, timeout: float = 60
    ):
        cmd = [sys.executable, "-m", "trt_inpaint.cli", "serve", "--port", "0", "--no-footprint-cache", *args]
        self.log = log
        self._err = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._err, text=True, env={**os.environ, **(env or {})}
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(
                    f"the server printed no URL within {timeout} s: {self.stderr()}"
                ) from None
            if m := URL_LINE.search(line):
                self.url = m.group(1)
                break
        self.stdout = lines

    def stderr(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def client(self, checker: OpenApiCheck | None = None, **kw) -> httpx.Client:
        hooks = {"response": [checker.hook]} if checker else {}
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 30), event_hooks=hooks, **kw)

    def wait_ready(self, timeout: float = 30, headers: dict | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=5, headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready within {timeout} s: {self.stderr()}")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._err is not subprocess.DEVNULL:
            self._err.close()


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """start_server(args, env=None) -> a running Server; every one started is stopped after the module."""
    started: list[Server] = []

    def start(args: list[str], env: dict | None = None, ready: bool = True) -> Server:
        log = tmp_path_factory.mktemp("server") / "stderr.txt"
        s = Server([str(a) for a in args], env, log)
        started.append(s)
        if ready:
            s.wait_ready(headers={})
        return s

    yield start
    for s in started:
        s.terminate(10)


class OpenApiCheck:
    """Checks every answer against the server's OpenAPI description: its status is documented for the
    route, its content type too, and a JSON body fits the documented schema."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.routes = []
        for path, ops in doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
            self.routes.append((re.compile(pattern), path, ops))
        self.checked = 0

    def route(self, path: str):
        for pattern, template, ops in self.routes:
            if pattern.match(path):
                return template, ops
        return None, None

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.check(response.request.method, response.request.url.path, response)

    def check(self, method: str, path: str, response: httpx.Response) -> None:
        template, ops = self.route(path)
        if template is None or method.lower() not in ops:
            return  # not an API route (the page, unknown paths)
        documented = ops[method.lower()]["responses"]
        code = str(response.status_code)
        assert code in documented, f"{method} {template} answered {code}, documented: {sorted(documented)}"
        content = documented[code].get("content")
        kind = response.headers.get("content-type", "").split(";")[0]
        assert content and kind in content, f"{method} {template} {code}: {kind} not in {list(content or {})}"
        if kind == "application/json":
            schema = {**content[kind]["schema"], "components": self.doc["components"]}
            jsonschema.validate(response.json(), schema)
        for name in documented[code].get("headers", {}):
            assert name in response.headers, f"{method} {template} {code}: header {name} missing"
        self.checked += 1


@pytest.fixture(scope="session")
def big_engines(tmp_path_factory) -> Path:
    """Stand-ins whose loads cost real memory (about 110 MB resident each on ONNX Runtime CPU), so that a
    budget of ``ONE_STAGE_BUDGET`` holds exactly one stage at a time."""
    return write_standins(tmp_path_factory.mktemp("big_engines"), width=1_000_000)


ONE_STAGE_BUDGET = "150MiB"


def metric_samples(client: httpx.Client) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get("/metrics").text
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


def metric(samples: list, name: str, **labels) -> float:
    return sum(
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait_for(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
