"""``ServeConfig``: the server's own options (the engine options are the runtime's ``InpaintOptions``), and
the one place their defaults are written."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, fields

from trt_inpaint.errors import InputError

_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*$")
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_count(text: str | int) -> int:
    """A count as people write it: 50M = 50,000,000 (decimal K, M, G)."""
    if isinstance(text, int):
        return text
    m = _COUNT.match(str(text))
    if not m:
        raise ValueError(f"not a count: {text!r} (examples: 50M, 2500000, 1.5G)")
    return int(float(m.group(1)) * _SCALE[m.group(2).lower()])


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 8  # requests run together as one Inpainter.run
    batch_wait_ms: float = 50.0  # how long the oldest waiting request may wait for others to join
    max_queue: int = 32  # requests admitted and not yet running; past it: 503 with Retry-After
    request_timeout: float = 120.0  # seconds from arrival to answer; past it: 504
    max_upload_mb: float = 50.0  # request body, in MB (10^6 bytes)
    max_pixels: int | str = "50M"  # width x height of the image (and of the mask), read from the header
    graceful_timeout: float = 30.0  # seconds a drain (SIGTERM, Ctrl-C) waits for requests in flight
    api_key: str | None = None
    cors: tuple[str, ...] = ()  # origins allowed by CORS; none: no CORS headers at all
    preload: bool = False  # load every stage before turning ready
    retry_after: int = 1  # seconds, in 503 answers
    probe_interval: float = 2.0  # seconds between reload attempts of a failing stage while idle

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "max_pixels", parse_count(self.max_pixels))
        except ValueError as e:
            raise InputError(f"option max_pixels: {e}") from None
        for name in ("port", "max_batch", "max_queue", "max_pixels"):
            low = 0 if name == "port" else 1
            if int(getattr(self, name)) < low:
                raise InputError(f"option {name}: must be >= {low}, got {getattr(self, name)}")
        for name in ("batch_wait_ms", "request_timeout", "max_upload_mb", "graceful_timeout"):
            if float(getattr(self, name)) < 0 or (
                name != "batch_wait_ms" and float(getattr(self, name)) == 0
            ):
                raise InputError(f"option {name}: must be positive, got {getattr(self, name)}")
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("option api_key: empty key")
        object.__setattr__(self, "cors", tuple(self.cors))

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 10**6)

    @property
    def batch_wait(self) -> float:
        return self.batch_wait_ms / 1000.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def default(cls, name: str):
        return next(f.default for f in fields(cls) if f.name == name)
