"""The OpenAPI description's shared pieces: error answers, the image answer, request bodies that the
routes parse themselves (multipart or JSON), and the component schemas those refer to."""

from __future__ import annotations

from fastapi.openapi.utils import get_openapi

from trt_inpaint.serve.schemas import ErrorBody, InferRequest, InpaintJson, InpaintMultipart
from trt_inpaint.serve.service import ANSWER_HEADERS
from trt_inpaint.serve.sniff import ImageFormat

_WHY = {
    400: "Bad input: an image that does not decode, a truncated header, a mask of another size, ...",
    401: "Missing or wrong API key (only when the server has one)",
    404: "No such model on this server",
    413: "Body over --max-upload-mb, or an image over --max-pixels (read from its header)",
    415: "Not a PNG, JPEG, WebP, TIFF or BMP (judged by its bytes), or a body neither multipart nor JSON",
    422: "Missing, misnamed or invalid fields",
    500: "An engine failed (missing, unreadable or corrupt file, ...): the reason; the server stays up",
    503: "Queue full, shutting down, or backend unavailable; see Retry-After",
    504: "No answer within --request-timeout; its work left the batch",
}
_SCHEMAS = (ErrorBody, InpaintJson, InpaintMultipart, InferRequest)

IMAGE_RESPONSE = {
    "description": "The inpainted image, in the input's format or the requested one",
    "content": {f.media_type: {"schema": {"type": "string", "format": "binary"}} for f in ImageFormat},
    "headers": {
        name: {"description": why, "schema": {"type": "string"}} for name, why in ANSWER_HEADERS.items()
    },
}


def errors(*codes: int) -> dict:
    return {c: {"model": ErrorBody, "description": _WHY[c]} for c in codes}


def request_body(*schemas: str) -> dict:
    kinds = {"InpaintMultipart": "multipart/form-data", "InpaintJson": "application/json"}
    content = {
        kinds.get(s, "application/json"): {"schema": {"$ref": f"#/components/schemas/{s}"}} for s in schemas
    }
    return {"requestBody": {"required": True, "content": content}}


def build_openapi(app) -> dict:
    """FastAPI's description plus the schemas of the bodies that the routes parse themselves."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in _SCHEMAS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = doc
    return app.openapi_schema
