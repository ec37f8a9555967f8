"""This CPU's facts, read by the tests themselves (not through the code under test): its /proc/cpuinfo flags
and whether it computes bf16 natively (AVX512-BF16 or AMX, and BF16 among OpenVINO's CPU capabilities)."""

from __future__ import annotations

from pathlib import Path


def flags_here() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16_here() -> bool:
    import openvino as ov

    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return bool({"avx512_bf16", "amx_bf16"} & flags_here()) and "BF16" in caps
