"""Open Inference Protocol (KServe v2) bodies, as Triton speaks them, for one encoded image in and out.

Inputs ``image`` and ``mask``: datatype BYTES, one element each. In JSON an element is a base64 string
(raw bytes are not JSON text). With Triton's binary tensor data extension the request's JSON is followed by
raw tensor data: the JSON's length is in the ``Inference-Header-Content-Length`` header, each tensor's size
in its ``parameters.binary_data_size``, and a BYTES element is a 4-byte little-endian length and the bytes
(as Triton's clients send it). The output ``image`` comes back the same way: binary when the request asks
(``outputs[].parameters.binary_data`` or ``parameters.binary_data_output``), else base64 in JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass

from trt_inpaint.serve.problems import Problem
from trt_inpaint.serve.schemas import OPTION_FIELDS, InferRequest, InpaintFields
from trt_inpaint.serve.uploads import Upload, json_object, validate

HEADER_LENGTH = "inference-header-content-length"
INPUTS = ("image", "mask")
OUTPUT = "image"
# request parameters of Triton's clients that mean nothing here
TRITON_PARAMETERS = {
    "binary_data_output",
    "sequence_id",
    "sequence_start",
    "sequence_end",
    "priority",
    "timeout",
}


@dataclass
class InferCall:
    upload: Upload
    id: str | None
    binary_output: bool


def _one_bytes_element(raw: bytes, name: str) -> bytes:
    """A BYTES tensor of one element in Triton's binary layout: <u32 length><bytes>."""
    if len(raw) < 4:
        raise Problem(400, f"input {name}: binary data shorter than its 4-byte length prefix")
    (n,) = struct.unpack("<I", raw[:4])
    if n != len(raw) - 4:
        raise Problem(
            400, f"input {name}: holds {len(raw) - 4} bytes after a length prefix of {n} (one element)"
        )
    return raw[4:]


def _json_element(data, name: str) -> bytes:
    flat = data
    while isinstance(flat, list) and len(flat) == 1:
        flat = flat[0]
    if not isinstance(flat, str):
        raise Problem(422, f"input {name}: data must hold one base64 string")
    try:
        return base64.b64decode(flat, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, f"input {name}: data is not valid base64") from None


def parse_infer(body: bytes, header_length: str | None) -> InferCall:
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise Problem(400, "Inference-Header-Content-Length is not a number") from None
        if not 0 < n <= len(body):
            raise Problem(400, f"Inference-Header-Content-Length {n} but the body has {len(body)} bytes")
        head, binary = body[:n], body[n:]
    else:
        head, binary = body, b""
    req = validate(InferRequest, json_object(head, "send a v2 inference request (JSON)"))
    found: dict[str, bytes] = {}
    offset = 0
    for t in req.inputs:
        if t.name not in INPUTS:
            raise Problem(422, f"unknown input {t.name!r} (inputs: image, mask)")
        if t.name in found:
            raise Problem(422, f"input {t.name!r} given twice")
        if t.datatype != "BYTES":
            raise Problem(422, f"input {t.name}: datatype {t.datatype}, expected BYTES")
        count = 1
        for d in t.shape:
            count *= d
        if count != 1:
            raise Problem(422, f"input {t.name}: shape {t.shape}, expected one element ([1])")
        size = (t.parameters or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise Problem(400, f"input {t.name}: binary_data_size {size} past the end of the binary data")
            found[t.name] = _one_bytes_element(binary[offset : offset + size], t.name)
            offset += size
        elif t.data is not None:
            found[t.name] = _json_element(t.data, t.name)
        else:
            raise Problem(422, f"input {t.name}: neither data nor parameters.binary_data_size")
    if offset != len(binary):
        raise Problem(400, f"{len(binary) - offset} bytes of binary data belong to no input")
    for name in INPUTS:
        if name not in found:
            raise Problem(422, f"missing input {name!r} (inputs: image, mask, BYTES)")
    params = dict(req.parameters or {})
    binary_output = bool(params.pop("binary_data_output", False))
    for key in TRITON_PARAMETERS:
        params.pop(key, None)
    for out in req.outputs or []:
        if out.name != OUTPUT:
            raise Problem(422, f"unknown output {out.name!r} (output: image)")
        binary_output |= bool((out.parameters or {}).get("binary_data", False))
    unknown = sorted(set(params) - set(OPTION_FIELDS))
    if unknown:
        raise Problem(422, f"unknown parameter {unknown[0]!r} (parameters: {', '.join(OPTION_FIELDS)})")
    fields = validate(InpaintFields, params)
    return InferCall(Upload(found["image"], found["mask"], fields), req.id, binary_output)


def infer_response(
    model: str, call: InferCall, image: bytes, parameters: dict
) -> tuple[bytes, dict[str, str], str]:
    """(body, headers, media type) of the answer carrying ``image``."""
    out = {"name": OUTPUT, "datatype": "BYTES", "shape": [1]}
    head = {"model_name": model, "model_version": "1", "parameters": parameters, "outputs": [out]}
    if call.id is not None:
        head["id"] = call.id
    if not call.binary_output:
        out["data"] = [base64.b64encode(image).decode("ascii")]
        return json.dumps(head).encode(), {}, "application/json"
    raw = struct.pack("<I", len(image)) + image
    out["parameters"] = {"binary_data_size": len(raw)}
    text = json.dumps(head).encode()
    return text + raw, {"Inference-Header-Content-Length": str(len(text))}, "application/octet-stream"
