"""``InpaintOptions``: every option of the runtime, and the one place its defaults are written.

The CLI's flags, the Python API's keywords, ``cache-outputs``, the server and the cluster runner all take
their defaults from here. Values are normalised on construction (strings to enums, sizes to bytes, paths to
``Path``); a bad value is an ``InputError`` naming the option. The record is frozen and picklable, so it can
travel to worker processes.

Some options may differ per image (``PER_ITEM``: which models, MAT's seed, the HD strategy and margin,
mask resizing): ``Inpainter.prepare(..., seed=7)`` overrides them for one work item.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import Pipeline, Precision
from trt_inpaint.runtime.backends.base import Backend
from trt_inpaint.runtime.backends.openvino import OpenVinoDevice
from trt_inpaint.runtime.hd import HdConfig, HdStrategy
from trt_inpaint.runtime.units import parse_bytes

PER_ITEM = ("models", "seed", "hd_strategy", "hd_crop_margin", "resize_mask")


@dataclass(frozen=True)
class InpaintOptions:
    engines: Path | str = Path("engines")  # the engines folder written by export-engines
    backend: Backend | str = Backend.AUTO
    precision: Precision | str | None = None  # None: the backend's preferred one (the selection says why)
    memory_budget: int | str | None = "16GiB"  # memory for resident stages; None: unlimited
    host_cache: int | str | None = "2GiB"  # host memory for intermediates before spilling to disk
    models: Pipeline | str = Pipeline.ENSEMBLE
    seed: int = 240  # seed of MAT's random inputs (IOPaint runs MAT with 240)
    hd_strategy: HdStrategy | str = HdStrategy.CROP
    hd_crop_margin: int = 128  # pixels around the mask's box (IOPaint's hd_strategy_crop_margin)
    resize_mask: bool = False  # resize a mask whose size differs from the image (else an error)
    threads: int | None = None  # CPU threads of ONNX Runtime and OpenVINO (None: their default)
    openvino_device: OpenVinoDevice | str = OpenVinoDevice.CPU  # OpenVINO backend: CPU, or GPU (Intel)
    spill_dir: Path | str | None = None  # parent of the spill folder (None: the system's temporary folder)
    footprint_cache: Path | str | None = None  # JSON of footprints measured before (None: estimates only)

    def __post_init__(self) -> None:
        def convert(name: str, fn) -> None:
            value = getattr(self, name)
            if value is None:
                return
            try:
                object.__setattr__(self, name, fn(value))
            except (ValueError, TypeError) as e:
                raise InputError(f"option {name}: {e}") from None

        for name, cls in (
            ("backend", Backend), ("precision", Precision), ("models", Pipeline), ("hd_strategy", HdStrategy),
            ("openvino_device", OpenVinoDevice),
        ):  # fmt: skip
            convert(name, lambda v, cls=cls: _enum(cls, v))
        convert("memory_budget", parse_bytes)
        convert("host_cache", parse_bytes)
        for name in ("engines", "spill_dir", "footprint_cache"):
            convert(name, Path)
        for name in ("seed", "hd_crop_margin", "threads"):
            convert(name, _int)
        if self.hd_crop_margin < 0:
            raise InputError(f"option hd_crop_margin: must be >= 0, got {self.hd_crop_margin}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"option threads: must be >= 1, got {self.threads}")
        object.__setattr__(self, "resize_mask", bool(self.resize_mask))

    @property
    def hd(self) -> HdConfig:
        return HdConfig(self.hd_strategy, self.hd_crop_margin)

    def for_item(self, **overrides) -> InpaintOptions:
        """These options with per-image overrides (``PER_ITEM`` names; None keeps the value)."""
        bad = sorted(set(overrides) - set(PER_ITEM))
        if bad:
            raise InputError(f"option {bad[0]} cannot change per image (per image: {', '.join(PER_ITEM)})")
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self

    @classmethod
    def default(cls, name: str):
        """The default of option ``name`` as written above (e.g. "16GiB"), for help texts and flags."""
        return next(f.default for f in fields(cls) if f.name == name)


def _enum(cls, value):
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{value!r} is not one of {', '.join(m.value for m in cls)}") from None


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)
