"""The web page (``GET /``), the API page (``GET /docs``) and their static files: package data, served
from a fixed list (no path from the client reaches the file system)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from trt_inpaint.serve.problems import Problem

router = APIRouter(include_in_schema=False)
FILES = {
    "index.html": "text/html; charset=utf-8",
    "docs.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# everything from this server, nothing inline, no other origin (the machine may be offline anyway)
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def page_file(name: str) -> bytes:
    return resources.files("trt_inpaint.serve").joinpath("page", name).read_bytes()


def _file(name: str) -> Response:
    return Response(page_file(name), media_type=FILES[name], headers={"Cache-Control": "no-cache"})


@router.get("/")
async def index() -> Response:
    return _file("index.html")


@router.get("/docs")
async def docs() -> Response:
    return _file("docs.html")


@router.get("/page/{name}")
async def static(name: str) -> Response:
    if name not in FILES:
        raise Problem(404, f"no page file {name!r}")
    return _file(name)
