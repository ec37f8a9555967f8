"""``WorkItem``: one image on its way through prepare -> run -> finish, as a plain picklable record.

Everything in it is numpy arrays, bytes, numbers, enums and our typed errors, so an item can be prepared
in one thread or process, run in another (batched with items from elsewhere) and finished in a third.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trt_inpaint.errors import TrtInpaintError
from trt_inpaint.export.spec import Pipeline
from trt_inpaint.runtime.hd import Geometry


@dataclass
class Source:
    """What the input was, for the encoder and for messages."""

    name: str  # the image file's path, or a label for arrays ("0", "request 12", ...)
    suffix: str = ""  # the file's format as its suffix (".jpg"); "" for arrays
    data: bytes | None = None  # the file's bytes: copied for an empty mask, spliced into for JPEG
    orientation: int = 1  # the EXIF orientation applied at decode (1: none)


@dataclass
class WorkItem:
    """One image: its pixels and hole at full size, the plan, the working tensors, then a result or error.

    ``geometry`` None: the mask is empty and nothing runs (``finish`` returns the input). After ``run``,
    ``result`` holds the last stage's output (1, 3, h, w) float32 at the working size, or ``error`` the
    typed error that stopped this item.
    """

    source: Source
    pixels: np.ndarray  # the decoded input: upright, RGB(A), uint8/uint16/float32, HxW or HxWxC
    hole: np.ndarray  # bool HxW at the image's size
    pipeline: Pipeline
    seed: int  # MAT's noise seed
    geometry: Geometry | None
    image: np.ndarray | None = None  # (1, 3, h, w) float32 in [0, 1]
    mask: np.ndarray | None = None  # (1, 1, h, w) float32, 1 = hole
    result: np.ndarray | None = None
    error: TrtInpaintError | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)  # this item's time in each stage

    @classmethod
    def from_tensors(
        cls, name: str, image: np.ndarray, mask: np.ndarray, pipeline: Pipeline, seed: int
    ) -> WorkItem:
        """An item whose input is already at the working size: ``image`` (1, 3, h, w) float32 in [0, 1] and
        ``mask`` (1, 1, h, w), 1 = hole (benchmarks, training). ``finish`` gives HxWx3 float32."""
        h, w = image.shape[-2:]
        return cls(
            Source(name),
            np.ascontiguousarray(image[0].transpose(1, 2, 0)),
            mask[0, 0] > 0.5,
            Pipeline(pipeline),
            seed,
            Geometry(0, h, 0, w, (0, 0, 0, 0), (h, w)),
            image,
            mask,
        )

    @property
    def needs_run(self) -> bool:
        """False for an empty mask."""
        return self.geometry is not None

    @property
    def pending(self) -> bool:
        """Needs a run and has neither a result nor an error yet."""
        return self.needs_run and self.result is None and self.error is None

    @property
    def name(self) -> str:
        return self.source.name
