"""An inpaint request's body, multipart or JSON, into bytes and validated options (no decoding here)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from trt_inpaint.serve.limits import BodyTooLarge
from trt_inpaint.serve.problems import Problem
from trt_inpaint.serve.schemas import OPTION_FIELDS, InpaintFields, InpaintJson

FILES = ("image", "mask")
HOW = "send multipart/form-data with files 'image' and 'mask', or JSON with them base64"


@dataclass
class Upload:
    image: bytes
    mask: bytes
    fields: InpaintFields


def validation_message(e: ValidationError) -> str:
    """One line from pydantic's first error: the field and the problem."""
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "body"
    if err["type"] == "extra_forbidden":
        return f"unknown field {loc!r} (fields: {', '.join((*FILES, *OPTION_FIELDS))})"
    return f"field {loc}: {err['msg']}"


def validate(model: type[BaseModel], data) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Problem(422, validation_message(e)) from None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_upload(request: Request) -> Upload:
    kind = media_type(request)
    if kind == "multipart/form-data":
        return await _multipart(request)
    if kind == "application/json":
        return await _json(request)
    if not kind and not await request.body():
        raise Problem(400, f"empty request body: {HOW}")
    raise Problem(415, f"content type {kind or '(none)'} not accepted: {HOW}")


async def _multipart(request: Request) -> Upload:
    try:
        form = await request.form(max_files=len(FILES), max_fields=len(OPTION_FIELDS))
    except BodyTooLarge:
        raise
    except HTTPException as e:
        raise Problem(400, f"multipart body: {e.detail}") from None
    try:
        files: dict[str, bytes] = {}
        options: dict[str, str] = {}
        for key, value in form.multi_items():
            if key in files or key in options:
                raise Problem(422, f"field {key!r} given twice")
            if key in FILES:
                if not isinstance(value, UploadFile):
                    raise Problem(422, f"field {key}: must be a file part, not a text field")
                files[key] = await value.read()
            elif isinstance(value, UploadFile):
                raise Problem(422, f"unknown file field {key!r} (files: image, mask)")
            else:
                options[key] = value
        for name in FILES:
            if name not in files:
                raise Problem(422, f"field {name}: missing file part ({HOW})")
        fields = validate(InpaintFields, options)
        return Upload(files["image"], files["mask"], fields)
    finally:
        await form.close()


def _b64(text: str, name: str) -> bytes:
    if text.startswith("data:") and "," in text:  # a data URL
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, f"field {name}: not valid base64") from None


def json_object(body: bytes, how: str) -> dict:
    """A request body that must be a JSON object; ``how`` says what to send instead."""
    if not body.strip():
        raise Problem(400, f"empty request body: {how}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem(400, f"body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise Problem(422, "body must be a JSON object")
    return data


async def _json(request: Request) -> Upload:
    req = validate(InpaintJson, json_object(await request.body(), HOW))
    fields = InpaintFields(**{k: getattr(req, k) for k in OPTION_FIELDS})
    return Upload(_b64(req.image, "image"), _b64(req.mask, "mask"), fields)
