"""Byte sizes as people write them: "16GiB", "512 MB", "1.5G", "0" / "unlimited"."""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip
_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")
UNLIMITED = None


def parse_bytes(text: str | int | float | None) -> int | None:
    """Bytes from "16GiB" (binary), "16GB" (decimal), "16G" (binary) or a number; None for unlimited.

    Raises ValueError with a one-line message on anything else.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a size cannot be negative: {text}")
        return int(text)
    if text.strip().lower() in ("unlimited", "none", "inf"):
        return None
    m = _RE.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 16GiB, 512MiB, 2GB, 1048576)")
    return int(float(m.group(1)) * _UNITS[unit])


def format_bytes(n: int | None) -> str:
    """Human-readable binary size: 1.5 GiB."""
    if n is None:
        return "unlimited"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(x) < 1024 or unit == "GiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GiB"
