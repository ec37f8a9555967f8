"""The API key: where it comes from, and an ASGI middleware that asks for it on every route but
``/v2/health/*`` (a load balancer's probes carry no secret).

Accepted as ``Authorization: Bearer KEY``, ``X-API-Key: KEY`` or HTTP Basic with the key as password (so a
browser asks for it once and the page's own requests carry it). Compared in constant time (the digests of
both, so neither the content nor the length leaks through timing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from trt_inpaint.errors import InputError
from trt_inpaint.serve.problems import error_response

KEY_ENV = "TRT_INPAINT_API_KEY"
OPEN_PREFIX = "/v2/health/"


def load_key(path: Path | None, environ=os.environ) -> str | None:
    """The key from ``path`` (its first line) or else $TRT_INPAINT_API_KEY; None when neither is given."""
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise InputError(f"cannot read the API key file: {e.strerror or e}", path) from e
        key = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not key:
            raise InputError("the API key file is empty", path)
        return key
    key = environ.get(KEY_ENV, "").strip()
    return key or None


def _digest(text: bytes) -> bytes:
    return hashlib.sha256(text).digest()


def presented_keys(headers: dict[bytes, bytes]) -> list[bytes]:
    """The keys a request offers (none, one or two)."""
    keys = []
    if b"x-api-key" in headers:
        keys.append(headers[b"x-api-key"].strip())
    scheme, _, value = headers.get(b"authorization", b"").strip().partition(b" ")
    if scheme.lower() == b"bearer":
        keys.append(value.strip())
    elif scheme.lower() == b"basic":
        try:
            keys.append(base64.b64decode(value.strip(), validate=True).partition(b":")[2])
        except ValueError:
            pass
    return keys


class ApiKeyAuth:
    """ASGI middleware: 401 (JSON, with a Basic challenge) unless the request carries ``key``."""

    def __init__(self, app, key: str):
        self.app = app
        self.expected = _digest(key.encode())

    def allowed(self, headers: dict[bytes, bytes]) -> bool:
        ok = False
        for k in presented_keys(headers):
            ok |= hmac.compare_digest(_digest(k), self.expected)
        return ok

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PREFIX):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.allowed(headers):
            return await self.app(scope, receive, send)
        what = "wrong API key" if presented_keys(headers) else "missing API key"
        answer = error_response(
            401,
            f"{what}: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            {"WWW-Authenticate": 'Basic realm="trt-inpaint", charset="UTF-8"'},
        )
        await answer(scope, receive, send)
