"""The runtime's command-line flags, shared by every command that runs engines (trt-inpaint, cache-outputs,
evaluate, the server): names, choices from the enums, defaults from ``InpaintOptions``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _choices(enum_cls) -> list[str]:
    return [m.value for m in enum_cls]


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Where the engines are and how they run: --engines --backend --precision --memory-budget --threads
    --openvino-device --no-footprint-cache."""
    from trt_inpaint.export.spec import Precision
    from trt_inpaint.runtime.backends.base import Backend
    from trt_inpaint.runtime.backends.openvino import OpenVinoDevice
    from trt_inpaint.runtime.options import InpaintOptions

    d = InpaintOptions.default
    p.add_argument("--engines", type=Path, default=d("engines"), help="engines folder (default: %(default)s)")
    p.add_argument(
        "--backend", default=d("backend").value, choices=_choices(Backend),
        help="auto picks the fastest that works here and says which (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--precision", choices=_choices(Precision),
        help="fp32, fp16 (mixed fp16 files) or bf16 (openvino only, on CPUs with native bf16: the fp32 files "
        "computed in bf16); default per backend and machine, and the log says which and why",
    )  # fmt: skip
    p.add_argument(
        "--memory-budget", default=d("memory_budget"),
        help="memory for resident stages (default %(default)s; 0 or unlimited: no limit)",
    )  # fmt: skip
    p.add_argument("--threads", type=int, help="CPU threads of ONNX Runtime and OpenVINO")
    p.add_argument(
        "--openvino-device", default=d("openvino_device").value, choices=_choices(OpenVinoDevice),
        help="where the openvino backend runs: CPU, or GPU for an Intel GPU (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--no-footprint-cache", action="store_true",
        help="ignore footprints measured in earlier runs ($TRT_INPAINT_CACHE_DIR or ~/.cache/trt-inpaint)",
    )  # fmt: skip


def add_seed_arg(p: argparse.ArgumentParser) -> None:
    from trt_inpaint.runtime.options import InpaintOptions

    p.add_argument(
        "--seed", type=int, default=InpaintOptions.default("seed"),
        help="seed of MAT's random inputs (default %(default)s, as IOPaint)",
    )  # fmt: skip


def add_item_args(p: argparse.ArgumentParser) -> None:
    """What runs on each image and how it maps to the working size: --models --seed --hd-strategy
    --hd-crop-margin --resize-mask --host-cache."""
    from trt_inpaint.export.spec import Pipeline
    from trt_inpaint.runtime.hd import HdStrategy
    from trt_inpaint.runtime.options import InpaintOptions

    d = InpaintOptions.default
    p.add_argument("--models", default=d("models").value, choices=_choices(Pipeline))
    add_seed_arg(p)
    p.add_argument("--hd-strategy", default=d("hd_strategy").value, choices=_choices(HdStrategy))
    p.add_argument(
        "--hd-crop-margin", type=int, default=d("hd_crop_margin"),
        help="pixels around the mask (crop strategy; default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--resize-mask", action="store_true", help="resize a mask whose size differs from the image"
    )
    p.add_argument(
        "--host-cache", default=d("host_cache"),
        help="host memory for decoded inputs and intermediates before spilling to disk (default %(default)s)",
    )  # fmt: skip


_FLAGS = {  # InpaintOptions field -> argparse dest, for the flags above
    "engines": "engines", "backend": "backend", "precision": "precision", "memory_budget": "memory_budget",
    "threads": "threads", "openvino_device": "openvino_device", "models": "models", "seed": "seed",
    "hd_strategy": "hd_strategy", "hd_crop_margin": "hd_crop_margin", "resize_mask": "resize_mask",
    "host_cache": "host_cache",
}  # fmt: skip


def options_from_args(args: argparse.Namespace, **fixed):
    """``InpaintOptions`` from the flags a parser has (the others keep their defaults), plus ``fixed``."""
    from trt_inpaint.runtime.footprints import default_cache_path
    from trt_inpaint.runtime.options import InpaintOptions

    given = {f: getattr(args, dest) for f, dest in _FLAGS.items() if hasattr(args, dest)}
    if not getattr(args, "no_footprint_cache", True):
        given["footprint_cache"] = default_cache_path()
    return InpaintOptions(**{**given, **fixed})
