"""The API key: asked on every route but /v2/health/*, accepted three ways, required beyond loopback."""

from __future__ import annotations

import base64
import subprocess
import sys

import httpx
import pytest

from tests.serve.helpers import sample

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def server(start_server, serve_engines, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("key") / "key.txt"
    key_file.write_text(KEY + "\n")
    s = start_server(
        ["--engines", serve_engines, "--backend", "ort-cpu", "--models", "lama", "--api-key-file", key_file]
    )
    return s


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/metrics"),
     ("GET", "/api/v1/status"), ("POST", "/api/v1/inpaint"), ("GET", "/v2"), ("GET", "/v2/models/lama"),
     ("GET", "/v2/models/lama/ready"), ("POST", "/v2/models/lama/infer"), ("GET", "/page/app.js")],
)  # fmt: skip
def test_every_route_but_health_needs_the_key(server, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": KEY + "x"}, {"Authorization": KEY}):
        r = httpx.request(method, server.url + path, headers=headers)
        assert r.status_code == 401, (path, headers, r.status_code)
        assert set(r.json()) == {"error"} and "API key" in r.json()["error"]
        assert r.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200
    assert httpx.get(server.url + "/v2/health/live").status_code == 200


def test_the_key_is_accepted_three_ways(server):
    basic = "Basic " + base64.b64encode(f"anyone:{KEY}".encode()).decode()
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"Authorization": basic}):
        assert httpx.get(server.url + "/api/v1/status", headers=headers).status_code == 200
    img, mask = sample(0)
    files = {"image": ("i", img.read_bytes()), "mask": ("m", mask.read_bytes())}
    r = httpx.post(server.url + "/api/v1/inpaint", files=files, headers={"X-API-Key": KEY}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


def test_binding_beyond_loopback_needs_a_key(serve_engines):
    cmd = [
        sys.executable,
        "-m",
        "trt_inpaint.cli",
        "serve",
        "--engines",
        str(serve_engines),
        "--host",
        "0.0.0.0",
    ]
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRT_INPAINT_API_KEY"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "needs an API key" in done.stderr
    assert done.stderr.count("\n") == 1 and not done.stdout  # one line, and it never listened
