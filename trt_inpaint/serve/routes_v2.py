"""The Open Inference Protocol (KServe v2) subset, with Triton's names: health, server and model metadata,
model readiness, and ``infer`` for models ``ensemble``, ``lama`` and ``mat`` (those this server holds)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from trt_inpaint import __version__
from trt_inpaint.export.spec import Pipeline, pipeline_stages
from trt_inpaint.serve.kserve import HEADER_LENGTH, INPUTS, OUTPUT, infer_response, parse_infer
from trt_inpaint.serve.openapi import errors, request_body
from trt_inpaint.serve.problems import Problem
from trt_inpaint.serve.schemas import Health, InferResponse, ModelMetadata, ServerMetadata, TensorMetadata
from trt_inpaint.serve.state import parts

router = APIRouter(prefix="/v2")
NOT_READY = {"model": Health, "description": "Not ready: engines loading, a stage failing, or draining"}


def served_models(request: Request) -> list[str]:
    held = set(parts(request).inpainter.stages)
    return [p.value for p in Pipeline if set(pipeline_stages(p)) <= held]


def _model(request: Request, name: str) -> Pipeline:
    models = served_models(request)
    if name not in models:
        raise Problem(404, f"no model {name!r} here (models: {', '.join(models)})")
    return Pipeline(name)


@router.get(
    "/health/live", summary="The process answers", response_model=Health, response_model_exclude_none=True
)
async def live() -> Health:
    return Health(live=True)


@router.get(
    "/health/ready",
    summary="Ready to serve (503 while engines load, a stage fails, or the server drains)",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: NOT_READY},
)
async def ready(request: Request):
    b = parts(request).batcher
    if b.ready:
        return Health(ready=True)
    return JSONResponse(
        Health(ready=False, reason=b.not_ready_reason()).model_dump(exclude_none=True), status_code=503
    )


@router.get("", summary="Server metadata", response_model=ServerMetadata, responses=errors(401))
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="trt-inpaint", version=__version__, extensions=["binary_tensor_data"])


@router.get(
    "/models/{name}", summary="Model metadata", response_model=ModelMetadata, responses=errors(401, 404)
)
async def model_metadata(request: Request, name: str) -> ModelMetadata:
    _model(request, name)
    p = parts(request)
    tensors = [TensorMetadata(name=n, datatype="BYTES", shape=[1]) for n in INPUTS]
    return ModelMetadata(
        name=name,
        versions=["1"],
        platform=f"trt-inpaint-{p.batcher.snapshot().get('backend', 'unknown')}",
        inputs=tensors,
        outputs=[TensorMetadata(name=OUTPUT, datatype="BYTES", shape=[1])],
    )


@router.get(
    "/models/{name}/ready",
    summary="Model readiness",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: NOT_READY, **errors(401, 404)},
)
async def model_ready(request: Request, name: str):
    _model(request, name)
    return await ready(request)


@router.post(
    "/models/{name}/infer",
    summary="Inpaint one image (BYTES inputs image and mask; JSON base64 or Triton's binary extension)",
    response_model=InferResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "JSON (its length in Inference-Header-Content-Length) then the output",
                }
            }
        },
        **errors(400, 401, 404, 413, 415, 422, 500, 503, 504),
    },
    openapi_extra=request_body("InferRequest"),
)
async def infer(request: Request, name: str) -> Response:
    pipeline = _model(request, name)
    p = parts(request)
    job = p.batcher.admit()
    try:
        call = parse_infer(await request.body(), request.headers.get(HEADER_LENGTH))
        if call.upload.fields.models not in (None, pipeline):
            raise Problem(422, f"parameter models {call.upload.fields.models} differs from the model {name}")
        call.upload.fields.models = pipeline
        answer = await p.service.run(request, job, call.upload)
    finally:
        p.batcher.withdraw(job)
    body, headers, media = infer_response(name, call, answer.data, answer.parameters())
    return Response(body, media_type=media, headers={**headers, **answer.headers()})
