"""uvicorn around the app, with a drain: the first SIGTERM or Ctrl-C turns the server not ready and
refuses new requests (503), lets the admitted ones finish (at most ``graceful_timeout``), then stops; the
process exits 0. A second signal stops at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import uvicorn

from trt_inpaint.serve.batcher import Batcher


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: any free port); OSError names what failed."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, batcher: Batcher, grace: float, on_listen: Callable[[], None]):
        super().__init__(config)
        self.batcher = batcher
        self.grace = grace
        self.on_listen = on_listen
        self.drain_since: float | None = None

    def handle_exit(self, sig, frame) -> None:
        # not recorded in _captured_signals: uvicorn would raise it again at the end (exit by signal, not 0)
        if self.drain_since is None:
            self.drain_since = time.monotonic()
        else:
            self.should_exit = self.force_exit = True

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_listen()

    async def on_tick(self, counter: int) -> bool:
        if self.drain_since is not None and not self.should_exit:
            self.batcher.drain()
            if self.batcher.idle() or time.monotonic() - self.drain_since > self.grace:
                self.should_exit = True
        return await super().on_tick(counter)
