"""``create_app``: the FastAPI app around one ``Inpainter`` (whose ownership it takes: the app's shutdown
stops the inference thread and closes it).

Middleware, outermost first: request metrics, security headers, CORS (only with origins), the API key (only
with a key), the body limit. Errors of every kind answer a one-line JSON ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from trt_inpaint import __version__
from trt_inpaint.serve import routes_api, routes_page, routes_v2
from trt_inpaint.serve.auth import ApiKeyAuth
from trt_inpaint.serve.batcher import Batcher
from trt_inpaint.serve.config import ServeConfig
from trt_inpaint.serve.limits import BodyLimit
from trt_inpaint.serve.metrics import Metrics, RequestMetrics
from trt_inpaint.serve.problems import Problem, error_response, response_of
from trt_inpaint.serve.routes_page import CSP
from trt_inpaint.serve.service import ANSWER_HEADERS, Service
from trt_inpaint.serve.state import ServerParts

log = logging.getLogger("trt_inpaint.serve")


class SecurityHeaders:
    """ASGI middleware: no sniffing of content types, no framing, and the page's content policy."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", CSP.encode()),
    ]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def sending(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


def create_app(inpainter, config: ServeConfig | None = None) -> FastAPI:
    config = config or ServeConfig()
    holder: dict = {}
    metrics = Metrics(config.max_batch, lambda: holder["batcher"].snapshot())
    batcher = holder["batcher"] = Batcher(inpainter, config, metrics)
    parts = ServerParts(inpainter, config, batcher, metrics, Service(inpainter, batcher, config))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            parts.service.close()
            if batcher.stop(config.graceful_timeout):
                inpainter.close()
            else:
                log.error("the inference thread did not stop within %s s", config.graceful_timeout)

    middleware = [Middleware(RequestMetrics, metrics=metrics), Middleware(SecurityHeaders)]
    if config.cors:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors),
                allow_methods=["GET", "POST"],
                allow_headers=[
                    "Authorization",
                    "X-API-Key",
                    "Content-Type",
                    "Inference-Header-Content-Length",
                ],
                expose_headers=[*ANSWER_HEADERS, "Inference-Header-Content-Length", "Retry-After"],
            )
        )
    if config.api_key:
        middleware.append(Middleware(ApiKeyAuth, key=config.api_key))
    middleware.append(Middleware(BodyLimit, limit=config.max_upload_bytes))

    app = FastAPI(
        title="trt-inpaint",
        version=__version__,
        description="LaMa + MAT inpainting within a memory budget; concurrent requests are batched.",
        lifespan=lifespan,
        middleware=middleware,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.parts = parts

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return response_of(exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error_response(422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error")
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    app.include_router(routes_api.router)
    app.include_router(routes_v2.router)
    app.include_router(routes_page.router)
    return app
