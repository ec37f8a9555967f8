"""This CPU's instruction-set flags, and the one decision whether it computes bf16 natively.

Native bf16 means bf16 dot products in hardware: AVX512-BF16 (``avx512_bf16``) or AMX (``amx_bf16``). Without
them a bf16 "inference precision" is emulated or silently ignored, so it is never the default. The decision
is a pure function of the flag list and of what OpenVINO reports as the CPU's optimization capabilities
(``BF16`` among them where its CPU plugin computes bf16), so both branches can be checked on any machine.
Used by the OpenVINO backend (its default precision) and the benchmark (its bf16 rows). numpy-free.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names
CPUINFO = Path("/proc/cpuinfo")


def read_cpuinfo(path: Path = CPUINFO) -> dict[str, str]:
    """The fields of the first processor listed in ``path`` (Linux ``/proc/cpuinfo``: "model name", "flags",
    ...); empty where there is no such file (other systems)."""
    info: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    break  # the first processor only
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        return {}
    return info


def read_flags(path: Path = CPUINFO) -> frozenset[str] | None:
    """The flags of the first processor listed in ``path``; None where there is no such file or it lists no
    flags (other systems)."""
    flags = read_cpuinfo(path).get("flags")
    return frozenset(flags.split()) if flags is not None else None


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """This machine's CPU flags (read once), None where /proc/cpuinfo is not there."""
    return read_flags()


@dataclass(frozen=True)
class Bf16Verdict:
    native: bool
    why: str  # what the decision rests on, one clause ("avx512_bf16, amx_bf16 in /proc/cpuinfo; ...")


def native_bf16(flags: Iterable[str] | None, capabilities: Iterable[str] | None = None) -> Bf16Verdict:
    """Whether a CPU with these ``flags`` (None: unknown) computes bf16 natively, where OpenVINO, if it was
    asked, lists ``capabilities`` (its ``OPTIMIZATION_CAPABILITIES``; None: not asked). Both must agree:
    a flag OpenVINO does not use, or a capability without the flags behind it, is not native bf16."""
    caps = None if capabilities is None else {str(c).upper() for c in capabilities}
    ov_says = None if caps is None else "BF16" in caps
    ov_text = "" if caps is None else f"OpenVINO {'lists' if ov_says else 'does not list'} BF16 for the CPU"
    if flags is None:
        if ov_says is None:
            return Bf16Verdict(False, "unknown: no /proc/cpuinfo to read and OpenVINO not asked")
        return Bf16Verdict(ov_says, f"no /proc/cpuinfo to read; {ov_text}")
    found = [f for f in NATIVE_BF16_FLAGS if f in set(flags)]
    if not found:
        extra = f" ({ov_text})" if ov_says else ""
        return Bf16Verdict(False, f"no {' or '.join(NATIVE_BF16_FLAGS)} in /proc/cpuinfo{extra}")
    text = f"{', '.join(found)} in /proc/cpuinfo"
    if ov_says is None:
        return Bf16Verdict(True, text)
    return Bf16Verdict(ov_says, f"{text}; {ov_text}")
