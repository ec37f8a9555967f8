"""``trt-inpaint serve``: the HTTP service (see ``trt_inpaint.serve``). Exit codes as ``trt-inpaint``'s:
0 after a drain, 2 bad options, 3-6 engines, backend or budget errors at start."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from trt_inpaint.runtime.cli_args import add_engine_args, add_item_args
    from trt_inpaint.serve.config import ServeConfig

    d = ServeConfig.default
    p = argparse.ArgumentParser(
        prog="trt-inpaint serve",
        description="Serve inpainting over HTTP: a page at /, the API at /api/v1 and /v2 (KServe), "
        "/metrics, /docs. Concurrent requests are batched through the memory-budgeted pool.",
    )
    add_engine_args(p)
    add_item_args(p)  # the defaults of per-request options; --models also chooses which stages are held
    p.add_argument("--host", default=d("host"), help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=d("port"), help="port (default %(default)s; 0: any free)")
    p.add_argument(
        "--max-batch", type=int, default=d("max_batch"), help="requests per batch (default %(default)s)"
    )
    p.add_argument(
        "--batch-wait-ms", type=float, default=d("batch_wait_ms"),
        help="how long a request may wait for others to join its batch (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-queue", type=int, default=d("max_queue"),
        help="requests waiting at most; more get 503 with Retry-After (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--request-timeout", type=float, default=d("request_timeout"),
        help="seconds until a request answers 504 (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-upload-mb", type=float, default=d("max_upload_mb"),
        help="request body limit in MB (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-pixels", default=d("max_pixels"),
        help="pixel limit of an image, read from its header (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--api-key-file", type=Path,
        help="file whose first line is the API key (else $TRT_INPAINT_API_KEY); needed beyond loopback",
    )  # fmt: skip
    p.add_argument(
        "--cors", action="append", default=[], metavar="ORIGIN", help="allow this origin (CORS); repeatable"
    )
    p.add_argument("--preload", action="store_true", help="load every stage before turning ready")
    p.add_argument(
        "--graceful-timeout", type=float, default=d("graceful_timeout"),
        help="seconds a drain (SIGTERM, Ctrl-C) waits for requests in flight (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")
    return p


def _config(args):
    from trt_inpaint.errors import InputError
    from trt_inpaint.serve.auth import KEY_ENV, load_key
    from trt_inpaint.serve.config import ServeConfig, is_loopback

    key = load_key(args.api_key_file)
    if key is None and not is_loopback(args.host):
        raise InputError(
            f"binding {args.host} (not loopback) needs an API key: --api-key-file FILE or ${KEY_ENV}"
        )
    return ServeConfig(
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue,
        request_timeout=args.request_timeout,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        graceful_timeout=args.graceful_timeout,
        api_key=key,
        cors=tuple(args.cors),
        preload=args.preload,
    )


def _serve(args) -> int:
    from dataclasses import replace

    import uvicorn

    from trt_inpaint.runtime.api import Inpainter, stderr_log
    from trt_inpaint.runtime.cli_args import options_from_args
    from trt_inpaint.serve.app import create_app
    from trt_inpaint.serve.server import DrainingServer, bind

    config = _config(args)
    inpainter = Inpainter(options_from_args(args), log=stderr_log)  # selection, budget check: no load yet
    try:
        sock = bind(config.host, config.port)
    except OSError as e:
        inpainter.close()
        print(
            f"trt-inpaint: error: cannot listen on {config.host}:{config.port}: {e.strerror or e}",
            file=sys.stderr,
        )
        return 2
    config = replace(config, port=sock.getsockname()[1])
    app = create_app(inpainter, config)

    def on_listen() -> None:
        key = ", API key required" if config.api_key else ""
        print(f"trt-inpaint: serving on {config.url} (page /, API /docs{key}); Ctrl-C drains", flush=True)

    uv = uvicorn.Config(
        app,
        log_level="warning",
        access_log=args.access_log,
        timeout_graceful_shutdown=max(1, int(config.graceful_timeout)),
        lifespan="on",
    )
    server = DrainingServer(uv, app.state.parts.batcher, config.graceful_timeout, on_listen)
    server.run(sockets=[sock])
    print("trt-inpaint: stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        print(
            f"trt-inpaint serve: needs the serve extra: pip install 'trt-inpaint[serve]' ({e})",
            file=sys.stderr,
        )
        return 5
    args = build_parser().parse_args(argv)
    from trt_inpaint.errors import TrtInpaintError

    try:
        return _serve(args)
    except TrtInpaintError as e:
        print(f"trt-inpaint: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
