"""What the numbers were measured on: CPU model and features, cores, memory, load, GPU, versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = (
    "trt-inpaint",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "openvino",
    "tensorrt",
    "tensorrt-rtx-cu13",
    "tensorrt_rtx",
    "opencv-python-headless",
    "nvidia-ml-py",
)
CPU_FEATURES = (
    "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16", "amx_fp16", "amx_tile",
)  # fmt: skip


def cpu_flags() -> set[str]:
    from trt_inpaint.runtime.cpu import cpu_flags as flags

    return set(flags() or ())


def bf16_verdict():
    """Whether this CPU computes bf16 natively, and why: the runtime's one decision (``runtime.cpu``, with
    OpenVINO's view of the CPU where it is installed)."""
    from trt_inpaint.runtime.backends.openvino import cpu_bf16

    return cpu_bf16()


def cpu_supports_bf16() -> bool:
    """Native bf16 matmul on the CPU (AVX512-BF16 or AMX); without it bf16 is emulated slowly or not used."""
    return bf16_verdict().native


def _lscpu_model() -> str | None:
    if not shutil.which("lscpu"):
        return None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return None


def gpus() -> list[dict]:
    """NVIDIA GPUs as nvidia-smi reports them (name, driver, memory); empty where none."""
    if not shutil.which("nvidia-smi"):
        return []
    q = "name,driver_version,memory.total,compute_cap"
    try:
        r = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in r.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            rows.append(dict(zip(("name", "driver", "memory", "compute_capability"), parts, strict=True)))
    return rows


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(repo: Path | None = None) -> str | None:
    repo = repo or Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists() or not shutil.which("git"):
        return None
    try:
        r = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() + ("+dirty" if dirty else "")) or None


def machine_info() -> dict:
    from trt_inpaint.runtime.cpu import read_cpuinfo

    cpu = read_cpuinfo()
    flags = cpu_flags()
    bf16 = bf16_verdict()
    vm = psutil.virtual_memory()
    model = _lscpu_model() or cpu.get("model name") or platform.processor() or "unknown"
    fam = cpu.get("cpu family")
    return {
        "cpu": model + (f" (family {fam}, model {cpu.get('model')})" if fam else ""),
        "cpu_features": [f for f in CPU_FEATURES if f in flags],
        "native_bf16": {"native": bf16.native, "why": bf16.why},
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_total": vm.total,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "os": f"{platform.system()} {platform.release()}",
        "gpus": gpus(),
        "versions": versions(),
        "git_commit": git_commit(),
        "argv": sys.argv,
    }
