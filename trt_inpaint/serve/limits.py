"""The request body's size, checked before anything reads it: the declared Content-Length at once, and the
bytes as they stream in (a chunked upload has no length to check). Starlette sets no overall limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from trt_inpaint.serve.problems import error_response


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the streamed body passes the limit; answered 413 by the app."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than the limit of {limit} bytes (--max-upload-mb)")


class BodyLimit:
    """ASGI middleware: 413 for a Content-Length over ``limit`` (nothing read), and a ``receive`` that
    counts the body's bytes and raises ``BodyTooLarge`` past it."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await error_response(400, "Content-Length is not a number")(scope, receive, send)
                if declared > self.limit:
                    msg = f"request body of {declared} bytes is larger than the limit of {self.limit} bytes"
                    return await error_response(413, f"{msg} (--max-upload-mb)")(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)
