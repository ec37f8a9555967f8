"""``trt-inpaint serve --backend openvino`` on a real server: its precision is the CPU's default (bf16 where
native, else fp32), the status says which and why, and a result equals the CLI's with the same backend."""

from __future__ import annotations

import pytest

from tests.cpu_facts import native_bf16_here
from tests.serve.helpers import cli_output, sample


@pytest.fixture(scope="module")
def server(start_server, serve_engines):
    return start_server(["--engines", serve_engines, "--backend", "openvino", "--batch-wait-ms", "5"])


def test_openvino_server_says_its_precision_and_equals_the_cli(server, serve_engines, tmp_path):
    with server.client() as client:
        status = client.get("/api/v1/status").json()
        img, mask = sample(0)
        files = {"image": ("a.bin", img.read_bytes()), "mask": ("b.bin", mask.read_bytes())}
        r = client.post("/api/v1/inpaint", files=files)
    assert status["backend"] == "openvino"
    if native_bf16_here():
        assert status["precision"] == "bf16" and "native bf16" in status["selection"]
    else:
        assert status["precision"] == "fp32" and "bf16 is not used" in status["selection"]
    assert r.status_code == 200, r.text
    flags = ("--backend", "openvino")  # after cli_output's own --backend: the last one counts
    assert r.content == cli_output(serve_engines, img, mask, tmp_path / "cli.jpg", *flags)
