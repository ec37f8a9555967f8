"""Errors as HTTP answers: a status and a one-line JSON body ``{"error": "..."}``.

``Problem`` is what the HTTP layer itself refuses (sizes, formats, fields, keys, a full queue, deadlines);
the runtime's typed errors map by type (``status_of``). Either way the process stays up.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from trt_inpaint.errors import (
    BackendUnavailable,
    BudgetError,
    Cancelled,
    CheckpointError,
    EngineError,
    InputError,
    TrtInpaintError,
)

# the runtime's typed errors -> HTTP status (subclasses first)
_STATUS: tuple[tuple[type[TrtInpaintError], int], ...] = (
    (InputError, 400),
    (Cancelled, 504),
    (BackendUnavailable, 503),
    (EngineError, 500),
    (CheckpointError, 500),
    (BudgetError, 500),
    (TrtInpaintError, 500),
)


class Problem(Exception):
    """An HTTP answer other than success: ``status``, a one-line ``message``, extra ``headers``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.message = " ".join(str(message).split())
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {self.message}")


def status_of(error: TrtInpaintError) -> int:
    return next(code for cls, code in _STATUS if isinstance(error, cls))


def problem_of(error: TrtInpaintError, retry_after: int = 1) -> Problem:
    status = status_of(error)
    headers = {"Retry-After": str(retry_after)} if status == 503 else None
    return Problem(status, str(error), headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def response_of(p: Problem) -> JSONResponse:
    return error_response(p.status, p.message, p.headers)
