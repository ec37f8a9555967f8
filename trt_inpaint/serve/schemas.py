"""Request and response models: they validate what comes in and describe what goes out (the OpenAPI page
is generated from them, so it says what the routes really take and return)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trt_inpaint.export.spec import Pipeline
from trt_inpaint.runtime.hd import HdStrategy
from trt_inpaint.serve.sniff import ImageFormat

# the per-request options (the runtime's PER_ITEM options, plus the output format)
OPTION_FIELDS = ("models", "seed", "hd_strategy", "hd_crop_margin", "resize_mask", "format")


class InpaintFields(BaseModel):
    """Optional per-request options; the server's flags give the defaults."""

    model_config = ConfigDict(extra="forbid")

    models: Pipeline | None = Field(None, description="which models run (default: the server's --models)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="seed of MAT's random inputs")
    hd_strategy: HdStrategy | None = Field(None, description="how a large image maps to the working size")
    hd_crop_margin: int | None = Field(None, ge=0, le=65535, description="pixels around the mask (crop)")
    resize_mask: bool | None = Field(None, description="resize a mask whose size differs from the image")
    format: ImageFormat | None = Field(None, description="output format (default: the image's own)")

    def overrides(self) -> dict:
        """The runtime's per-item overrides (None keeps the server's value)."""
        return {k: getattr(self, k) for k in OPTION_FIELDS if k != "format"}


class InpaintJson(InpaintFields):
    """The JSON form of an inpaint request, for clients that cannot send multipart."""

    image: str = Field(..., description="the image file's bytes, base64")
    mask: str = Field(..., description="the mask file's bytes, base64 (hole where > 127)")


class InpaintMultipart(InpaintFields):
    """The multipart form of an inpaint request (documentation only: the route parses the form itself)."""

    image: bytes = Field(..., json_schema_extra={"format": "binary"}, description="the image file")
    mask: bytes = Field(..., json_schema_extra={"format": "binary"}, description="the mask file")


class ErrorBody(BaseModel):
    error: str = Field(..., description="what went wrong, one line")


class Health(BaseModel):
    live: bool | None = None
    ready: bool | None = None
    reason: str | None = None


class StageInfo(BaseModel):
    stage: str
    resident: bool
    footprint_bytes: int | None = Field(None, description="measured at its last load (estimate before)")
    loads: int


class QueueInfo(BaseModel):
    waiting: int = Field(..., description="requests admitted and not yet running")
    running: int
    max_queue: int
    max_batch: int
    batch_wait_ms: float
    batches: int = Field(..., description="batches run since start")


class Status(BaseModel):
    ready: bool
    state: str = Field(..., description="loading, ready, draining or stopped")
    reason: str | None = Field(None, description="why not ready")
    backend: str
    precision: str
    selection: str
    models: str
    budget_bytes: int | None
    resident_bytes: int
    peak_pool_bytes: int
    stages: list[StageInfo]
    swaps: int
    queue: QueueInfo
    requests: dict[str, int] = Field(..., description="inpaint requests answered, by HTTP status")
    uptime_seconds: float


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InferTensor(BaseModel):
    """A v2 tensor: BYTES holding one encoded image (JSON: base64 strings in ``data``; binary extension:
    ``parameters.binary_data_size`` bytes after the JSON)."""

    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict | None = None
    data: list | None = None


class InferRequestedOutput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    parameters: dict | None = None


class InferRequest(BaseModel):
    """Open Inference Protocol request: inputs ``image`` and ``mask``; ``parameters`` may hold the inpaint
    options (seed, hd_strategy, hd_crop_margin, resize_mask, format)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    parameters: dict | None = None
    inputs: list[InferTensor]
    outputs: list[InferRequestedOutput] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict
    outputs: list[InferTensor]
