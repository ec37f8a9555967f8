"""The HTTP API on a real server (a subprocess on a free loopback port) with stand-in engines: results equal
the CLI's bit for bit, bad requests get one-line 4xx JSON and leave the server ready, status, metrics, the
v2 protocol (JSON and a real Triton client), and every answer fits the server's own OpenAPI description."""

from __future__ import annotations

import base64
import json

import cv2
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import OpenApiCheck
from tests.serve.helpers import as_png, cli_output, encode, png_claiming, sample

LIMITS = ["--max-upload-mb", "2", "--max-pixels", "1M"]


@pytest.fixture(scope="module")
def server(start_server, serve_engines):
    return start_server(["--engines", serve_engines, "--backend", "ort-cpu", "--batch-wait-ms", "5", *LIMITS])


@pytest.fixture(scope="module")
def checker(server):
    doc = httpx.get(f"{server.url}/openapi.json").json()
    return OpenApiCheck(doc)


@pytest.fixture(scope="module")
def client(server, checker):
    with server.client(checker) as c:
        yield c


def post_files(client, image: bytes, mask: bytes, **fields):
    files = {"image": ("a.bin", image), "mask": ("b.bin", mask)}
    return client.post("/api/v1/inpaint", files=files, data={k: str(v) for k, v in fields.items()})


def test_results_equal_the_cli_bit_for_bit(client, serve_engines, tmp_path):
    img, mask = sample(0)
    png = as_png(img, tmp_path)
    # a JPEG by multipart, a PNG by JSON, another seed and model choice: each the CLI's output byte for byte
    r = post_files(client, img.read_bytes(), mask.read_bytes())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.headers["x-inpaint-seed"] == "240"
    assert int(r.headers["x-inpaint-batch-size"]) >= 1 and float(r.headers["x-inpaint-stage-seconds"]) > 0
    assert r.content == cli_output(serve_engines, img, mask, tmp_path / "cli.jpg")

    body = {
        "image": base64.b64encode(png.read_bytes()).decode(),
        "mask": base64.b64encode(mask.read_bytes()).decode(),
    }
    r = client.post("/api/v1/inpaint", json={**body, "seed": 7, "models": "mat"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-inpaint-seed"] == "7"
    expected = cli_output(serve_engines, png, mask, tmp_path / "cli.png", "--seed", "7", "--models", "mat")
    assert r.content == expected
    # and the pixels outside the mask are the input's, those inside changed
    got = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
    src = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
    assert np.array_equal(got[~hole], src[~hole]) and not np.array_equal(got[hole], src[hole])


def test_output_format_and_empty_mask(client):
    img, mask = sample(1)
    r = post_files(client, img.read_bytes(), mask.read_bytes(), format="png", hd_strategy="resize")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == (512, 512)
    empty = encode(np.zeros((512, 512), np.uint8), ".png")
    r = post_files(client, img.read_bytes(), empty)
    assert r.status_code == 200 and r.headers["x-inpaint-batch-size"] == "0"
    assert r.content == img.read_bytes()  # nothing to do: the input, untouched


def _bad_requests(server):
    img, mask = sample(0)
    jpg, msk = img.read_bytes(), mask.read_bytes()
    png = encode(cv2.imread(str(img)), ".png")
    other_size = sample(2)[1].read_bytes()
    big = encode(np.zeros((1000, 1100, 3), np.uint8), ".png")  # 1.1 M pixels, over --max-pixels 1M
    files = lambda i, m: {"image": ("x", i), "mask": ("y", m)}  # noqa: E731
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731

    def chunks():  # a multipart file part that goes on past the limit, with no Content-Length
        yield b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n\r\n'
        for _ in range(6):
            yield b"\0" * 500_000

    return {
        "empty body": (400, dict(content=b"")),
        "empty JSON body": (400, dict(content=b"", headers={"content-type": "application/json"})),
        "not JSON": (400, dict(content=b"{nope", headers={"content-type": "application/json"})),
        "plain text body": (415, dict(content=b"hello", headers={"content-type": "text/plain"})),
        "not an image": (415, dict(files=files(b"just some text, not an image", msk))),
        "empty image file": (400, dict(files=files(b"", msk))),
        "truncated PNG": (400, dict(files=files(png[: len(png) // 3], msk))),
        "truncated PNG header": (400, dict(files=files(png[:20], msk))),
        "mask of another size": (400, dict(files=files(jpg, other_size))),
        "image over the pixel limit": (413, dict(files=files(big, msk))),
        "header claiming 100000x100000": (413, dict(files=files(png_claiming(100_000, 100_000), msk))),
        "upload over the byte limit": (413, dict(files=files(b"\0" * 3_000_000, msk))),
        "streamed upload over the byte limit": (
            413,
            dict(content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"}),
        ),
        "missing mask": (422, dict(files={"image": ("x", jpg)})),
        "misnamed field": (422, dict(files={"imgae": ("x", jpg), "mask": ("y", msk)})),
        "mask as a text field": (422, dict(files={"image": ("x", jpg)}, data={"mask": "abc"})),
        "unknown option": (422, dict(files=files(jpg, msk), data={"strength": "3"})),
        "bad seed": (422, dict(files=files(jpg, msk), data={"seed": "abc"})),
        "bad model": (422, dict(files=files(jpg, msk), data={"models": "sd15"})),
        "JSON without mask": (422, dict(json={"image": b64(jpg)})),
        "JSON bad base64": (422, dict(json={"image": "!!!", "mask": b64(msk)})),
        "JSON misnamed field": (422, dict(json={"image": b64(jpg), "mask": b64(msk), "sed": 1})),
    }


@pytest.mark.parametrize("case", list(_bad_requests(None)))
def test_bad_request_gets_a_one_line_4xx_and_the_server_stays_ready(server, client, case):
    status, kw = _bad_requests(server)[case]
    r = client.post("/api/v1/inpaint", **kw)
    assert r.status_code == status, f"{case}: {r.status_code} {r.text}"
    assert r.headers["content-type"] == "application/json"
    assert "\n" not in r.text.strip() and set(r.json()) == {"error"} and r.json()["error"], r.text
    assert client.get("/v2/health/ready").status_code == 200
    if case == "mask of another size":
        assert "mask" in r.json()["error"] and "451x300" in r.json()["error"]


def test_status_reports_pool_and_queue(client):
    post_files(client, *(p.read_bytes() for p in sample(0)))
    s = client.get("/api/v1/status").json()
    assert s["ready"] and s["state"] == "ready" and s["backend"] == "ort-cpu"
    assert [x["stage"] for x in s["stages"]] == ["lama", "lama_denoiser", "mat", "combiner", "final_denoiser"]
    assert all(x["loads"] == 1 and x["resident"] for x in s["stages"])  # the default budget holds them all
    assert s["resident_bytes"] == sum(x["footprint_bytes"] for x in s["stages"]) <= s["budget_bytes"]
    assert s["queue"]["max_batch"] == 8 and s["queue"]["waiting"] == 0 and s["queue"]["batches"] >= 1
    assert s["requests"]["200"] >= 1 and s["requests"].get("413", 0) >= 0


def test_metrics_follow_prometheus_rules(client):
    post_files(client, *(p.read_bytes() for p in sample(0)))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name, kind in {
        "trt_inpaint_requests": "counter",
        "trt_inpaint_request_duration_seconds": "histogram",
        "trt_inpaint_queue_duration_seconds": "histogram",
        "trt_inpaint_batch_size": "histogram",
        "trt_inpaint_stage_loads": "counter",
        "trt_inpaint_stage_swaps": "counter",
        "trt_inpaint_pool_resident_bytes": "gauge",
    }.items():
        assert families[name].type == kind, name
    assert all(n.startswith("trt_inpaint_") for n in families)
    samples = [s for f in families.values() for s in f.samples]
    assert all(s.name.endswith(("_total", "_created")) for f in families.values() if f.type == "counter"
               for s in f.samples)  # fmt: skip
    ok = [s for s in samples if s.name == "trt_inpaint_requests_total" and s.labels["status"] == "200"
          and s.labels["route"] == "/api/v1/inpaint"]  # fmt: skip
    assert ok and ok[0].value >= 1
    loads = {s.labels["stage"]: s.value for s in samples if s.name == "trt_inpaint_stage_loads_total"}
    assert loads == dict.fromkeys(["combiner", "final_denoiser", "lama", "lama_denoiser", "mat"], 1.0)
    resident = [s.value for s in samples if s.name == "trt_inpaint_pool_resident_bytes"]
    assert resident[0] > 0


def test_kserve_v2_json_and_routes(client):
    img, mask = sample(0)
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = client.get("/v2/models/lama").json()
    assert [t["name"] for t in meta["inputs"]] == ["image", "mask"] and meta["outputs"][0][
        "datatype"
    ] == "BYTES"
    assert client.get("/v2/models/mat/ready").json() == {"ready": True}
    assert client.get("/v2/models/sd15").status_code == 404
    tensors = [
        {"name": n, "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(p.read_bytes()).decode()]}
        for n, p in (("image", img), ("mask", mask))
    ]
    r = client.post("/v2/models/lama/infer", json={"id": "r1", "inputs": tensors, "parameters": {"seed": 5}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "r1" and out["model_name"] == "lama" and out["parameters"]["seed"] == 5
    got = base64.b64decode(out["outputs"][0]["data"][0])
    same = post_files(client, img.read_bytes(), mask.read_bytes(), models="lama", seed=5)
    assert got == same.content
    bad = client.post("/v2/models/lama/infer", json={"inputs": tensors[:1]})
    assert bad.status_code == 422 and "mask" in bad.json()["error"]
    bad = client.post("/v2/models/lama/infer", json={"inputs": tensors, "parameters": {"strength": 1}})
    assert bad.status_code == 422 and "strength" in bad.json()["error"]


def test_triton_client_binary_tensors(server, client):
    """Triton's own HTTP client (binary tensor data extension by default) against the v2 routes."""
    import tritonclient.http as triton

    img, mask = sample(3)
    c = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("ensemble")
    assert c.get_model_metadata("ensemble")["inputs"][0]["name"] == "image"
    inputs = []
    for name, path in (("image", img), ("mask", mask)):
        t = triton.InferInput(name, [1], "BYTES")
        t.set_data_from_numpy(np.array([path.read_bytes()], dtype=np.object_), binary_data=True)
        inputs.append(t)
    result = c.infer("ensemble", inputs, outputs=[triton.InferRequestedOutput("image", binary_data=True)])
    got = result.as_numpy("image")[0]
    assert got == post_files(client, img.read_bytes(), mask.read_bytes()).content
    c.close()


def test_openapi_matches_the_routes(server, client, checker):
    doc = checker.doc
    paths = set(doc["paths"])
    assert {
        "/api/v1/inpaint", "/api/v1/status", "/metrics", "/v2/health/live", "/v2/health/ready", "/v2",
        "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer", "/openapi.json",
    } == paths  # fmt: skip
    body = doc["paths"]["/api/v1/inpaint"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert "image/png" in doc["paths"]["/api/v1/inpaint"]["post"]["responses"]["200"]["content"]
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/page/docs.js").status_code == 200
    assert checker.checked >= 20  # the answers of the tests above were all checked against it


def test_page_and_its_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "access-control-allow-origin" not in r.headers  # no CORS without --cors
    for name in ("app.js", "app.css"):
        assert client.get(f"/page/{name}").status_code == 200
    assert client.get("/page/..%2Fapp.py").status_code == 404
    assert client.get("/page/index.htm").json()["error"].startswith("no page file")


def test_cors_only_when_asked(start_server, serve_engines):
    s = start_server(["--engines", serve_engines, "--backend", "ort-cpu", "--models", "lama",
                      "--cors", "http://example.test"])  # fmt: skip
    with s.client() as c:
        r = c.get("/api/v1/status", headers={"Origin": "http://example.test"})
        assert r.headers["access-control-allow-origin"] == "http://example.test"
        assert "x-inpaint-seed" in r.headers["access-control-expose-headers"].lower()
        r = c.get("/api/v1/status", headers={"Origin": "http://other.test"})
        assert "access-control-allow-origin" not in r.headers
        assert json.loads(c.get("/v2/models/mat").text)["error"].startswith("no model 'mat'")
