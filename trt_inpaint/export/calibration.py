"""Calibration feeds for the fp16 measurement: the photos and masks shipped in ``trt_inpaint.samples``
plus any pairs in a user folder (``--calibration DIR``), resized to the stage's size."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.export import spec as S
from trt_inpaint.samples import sample_pairs

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
Pair = tuple[Path, Path]


@dataclass(frozen=True)
class CalibrationOptions:
    size: int = 512  # side of the square calibration images for the dynamic stages (MAT: always its own)
    max_images: int | None = None  # None: all pairs
    directory: Path | None = None
    seed: int = 0  # noise inputs (MAT)


def folder_pairs(directory: Path) -> list[Pair]:
    """(image, mask) pairs of a folder: ``images/`` + ``masks/`` matched by stem, or flat ``NAME.ext`` +
    ``NAME_mask.png``. Raises InputError if the folder is missing or holds no pair."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("calibration folder does not exist", directory)
    if (directory / "images").is_dir() and (directory / "masks").is_dir():
        masks = {p.stem: p for p in (directory / "masks").iterdir() if p.suffix.lower() in IMAGE_EXTS}
        pairs = [
            (p, masks[p.stem])
            for p in sorted((directory / "images").iterdir())
            if p.suffix.lower() in IMAGE_EXTS and p.stem in masks
        ]
    else:
        files = {p.stem: p for p in directory.iterdir() if p.suffix.lower() in IMAGE_EXTS}
        pairs = [(files[s], files[s + "_mask"]) for s in sorted(files) if s + "_mask" in files]
    if not pairs:
        raise InputError(
            "no image/mask pairs (images/ + masks/ by name, or NAME.png + NAME_mask.png)", directory
        )
    return pairs


def calibration_pairs(opts: CalibrationOptions) -> list[Pair]:
    pairs = list(sample_pairs())
    if opts.directory is not None:
        pairs += folder_pairs(opts.directory)
    return pairs[: opts.max_images] if opts.max_images else pairs


def digest(pairs: Sequence[Pair]) -> str:
    """sha256 over the calibration files' bytes (part of the fp16 artefact's staleness key)."""
    h = hashlib.sha256()
    for img, mask in pairs:
        h.update(Path(img).read_bytes())
        h.update(Path(mask).read_bytes())
    return h.hexdigest()


def read_pair(
    image_path: Path, mask_path: Path, size: int | tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(1, 3, H, W) RGB in [0, 1] and (1, 1, H, W) mask in {0, 1} (1 = hole); ``size`` is S or (H, W)."""
    import cv2

    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("cannot read this image", image_path)
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError("cannot read this mask", mask_path)
    h, w = (size, size) if isinstance(size, int) else size
    img = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (w, h), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    image = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(image), (mask > 127).astype(np.float32)[None, None]


def resize(x: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Resize an (N, C, h, w) array to (N, C, size, size)."""
    import cv2

    if x.shape[-2:] == (size, size):
        return x
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = [
        cv2.resize(np.ascontiguousarray(c.transpose(1, 2, 0)), (size, size), interpolation=interp).reshape(
            size, size, -1
        )
        for c in x
    ]
    return np.ascontiguousarray(np.stack(out).transpose(0, 3, 1, 2)).astype(np.float32)


def noise_feeds(stage: S.Stage, seed: int) -> dict[str, np.ndarray]:
    """The NOISE inputs of one calibration image (``spec.random_feeds``: the stage boundary has the spec's
    noise shapes for every model size; reduced MATs crop them inside their stage wrapper)."""
    return S.random_feeds(stage, 1, seed)


Upstream = Callable[[S.Stage], "list[np.ndarray] | None"]


class CalibrationSet:
    """Photos at the sizes the stages need, and per-stage feeds that follow the ensemble's stage graph:
    a stage fed by another stage's output gets that stage's fp32 outputs (from ``upstream``) when known,
    else the photo."""

    def __init__(self, opts: CalibrationOptions | None = None):
        self.opts = opts = opts or CalibrationOptions()
        self.pairs = calibration_pairs(opts)
        self._cache: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def digest(self) -> str:
        return digest(self.pairs)

    def stage_size(self, stage: S.Stage) -> int:
        return S.spec(stage).fixed_size or self.opts.size

    def photos(self, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if size not in self._cache:
            self._cache[size] = [read_pair(i, m, size) for i, m in self.pairs]
        return self._cache[size]

    def feeds(
        self,
        stage: S.Stage,
        upstream: Upstream | None = None,
    ) -> list[dict[str, np.ndarray]]:
        stage = S.Stage(stage)
        size = self.stage_size(stage)
        photos = self.photos(size)
        call = next(c for c in S.PIPELINES[S.Pipeline.ENSEMBLE] if c.stage is stage)
        sources: dict[str, list[np.ndarray]] = {
            "image": [p[0] for p in photos],
            "mask": [p[1] for p in photos],
        }
        for src in set(call.feeds.values()) - set(sources):
            got = upstream(S.Stage(src)) if upstream else None
            sources[src] = [resize(x, size) for x in got] if got else sources["image"]
        out = []
        for k in range(len(photos)):
            f = {name: sources[src][k] for name, src in call.feeds.items()}
            f.update(noise_feeds(stage, self.opts.seed + k))
            out.append(f)
        return out
