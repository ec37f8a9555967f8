"""``POST /api/v1/inpaint``, ``GET /api/v1/status``, ``GET /metrics`` and ``GET /openapi.json``."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from trt_inpaint.serve.metrics import CONTENT_TYPE
from trt_inpaint.serve.openapi import IMAGE_RESPONSE, build_openapi, errors, request_body
from trt_inpaint.serve.schemas import QueueInfo, StageInfo, Status
from trt_inpaint.serve.state import parts
from trt_inpaint.serve.uploads import read_upload

router = APIRouter()


@router.post(
    "/api/v1/inpaint",
    summary="Inpaint one image",
    description="Multipart files `image` and `mask` (hole where > 127), or the same fields as JSON with the "
    "files base64. Returns the image in its own format (or `format`). Formats are judged by their bytes.",
    response_class=Response,
    responses={200: IMAGE_RESPONSE, **errors(400, 401, 413, 415, 422, 500, 503, 504)},
    openapi_extra=request_body("InpaintMultipart", "InpaintJson"),
)
async def inpaint(request: Request) -> Response:
    p = parts(request)
    job = p.batcher.admit()
    try:
        upload = await read_upload(request)
        answer = await p.service.run(request, job, upload)
    finally:
        p.batcher.withdraw(job)
    return Response(answer.data, media_type=answer.format.media_type, headers=answer.headers())


@router.get(
    "/api/v1/status",
    summary="Backend, stages resident against the budget, loads, swaps, queue, requests served",
    response_model=Status,
    responses=errors(401),
)
async def status(request: Request) -> Status:
    p = parts(request)
    s = p.batcher.snapshot()
    footprints = s.get("footprints", {})
    stages = [
        StageInfo(
            stage=name,
            resident=name in s["resident"],
            footprint_bytes=footprints.get(name),
            loads=s["loads"].get(name, 0),
        )
        for name in s["stages"]
    ]
    return Status(
        ready=s["ready"],
        state=s["state"],
        reason=s["reason"],
        backend=s["backend"],
        precision=s["precision"],
        selection=s["selection"],
        models=s["models"],
        budget_bytes=s["budget_bytes"],
        resident_bytes=s["resident_bytes"],
        peak_pool_bytes=s["peak_pool_bytes"],
        stages=stages,
        swaps=s["swaps"],
        queue=QueueInfo(
            waiting=s["waiting"],
            running=s["running"],
            max_queue=p.config.max_queue,
            max_batch=p.config.max_batch,
            batch_wait_ms=p.config.batch_wait_ms,
            batches=s["batches"],
        ),
        requests=dict(sorted(p.metrics.served.items())),
        uptime_seconds=round(time.monotonic() - p.started, 3),
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}, **errors(401)},
)
async def metrics(request: Request) -> Response:
    return Response(parts(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/openapi.json", summary="This API's OpenAPI description", responses=errors(401))
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build_openapi(request.app))
