"""LaMa-style evaluation masks: random line strokes and boxes, the six configured sets.

Facts from advimman/lama (saicinpainting/training/data/masks.py, configs/data_gen/random_*_{256,512}.yaml),
implemented here from their description:

- A mask is drawn by ONE generator, picked with probability irregular 1 : box 0.3 (strokes only for thin).
- Strokes: ``times`` polylines, each from a random start with 1-5 segments; a segment has angle
  ``0.01 + randint(max_angle)`` radians (mirrored to ``2*pi - angle`` on even polylines), length
  ``10 + randint(max_len)``, width ``5 + randint(max_width)``; the end point is truncated to int and
  clipped to [0, size]. With LaMa's default schedule (no ramp) ``times`` is drawn from
  [min_times, max_times + 1] inclusive.
- Boxes: ``times`` in [min_times, max_times], sides in [min_size, min(max_size, size - 2*margin)],
  placed inside the margin.
- Five variants are drawn per image, those covering more than 50 % are dropped and one survivor is
  kept at random. Where LaMa then skips the image, we draw five more, so every image gets a mask.
"""

from __future__ import annotations

import enum
import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from trt_inpaint.errors import InputError

_TWO_PI = 2 * 3.1415926  # LaMa's constant


@dataclass(frozen=True)
class StrokeConfig:
    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int = 4

    @property
    def times_range(self) -> tuple[int, int]:
        """Inclusive range of the number of polylines (LaMa's effective range, see module doc)."""
        return self.min_times, self.max_times + 1


@dataclass(frozen=True)
class BoxConfig:
    margin: int
    min_size: int
    max_size: int
    min_times: int
    max_times: int

    def size_range(self, height: int, width: int) -> tuple[int, int]:
        """Inclusive range of a box side on a ``height`` x ``width`` canvas."""
        hi = min(self.max_size, height - 2 * self.margin - 1, width - 2 * self.margin - 1)
        return self.min_size, max(self.min_size, hi)


@dataclass(frozen=True)
class MaskSetConfig:
    name: str
    size: int
    strokes: StrokeConfig
    boxes: BoxConfig | None
    stroke_proba: float = 1.0
    box_proba: float = 0.3
    variants: int = 5
    max_area: float = 0.5


MASK_SETS: dict[str, MaskSetConfig] = {
    c.name: c
    for c in (
        MaskSetConfig("thick_256", 256, StrokeConfig(1, 5, 100, 200), BoxConfig(10, 30, 150, 1, 3)),
        MaskSetConfig("medium_256", 256, StrokeConfig(4, 5, 50, 100), BoxConfig(0, 10, 50, 1, 5)),
        MaskSetConfig("thin_256", 256, StrokeConfig(4, 50, 10, 40), None),
        MaskSetConfig("thick_512", 512, StrokeConfig(1, 5, 250, 450), BoxConfig(10, 30, 300, 1, 4)),
        MaskSetConfig("medium_512", 512, StrokeConfig(4, 10, 100, 200), BoxConfig(0, 30, 150, 1, 5)),
        MaskSetConfig("thin_512", 512, StrokeConfig(4, 70, 20, 100), None),
    )
}


def resolve_mask_sets(names: str | list[str], size: int) -> list[MaskSetConfig]:
    """``"thick,medium,thin"`` -> the sets configured for ``size`` (256 or 512; other sizes take 256's).

    Full names (``thick_512``) are taken as they are.
    """
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not items:
        raise InputError("no mask sets given; choose from thick, medium, thin")
    suffix = 512 if size >= 512 else 256
    out = []
    for n in items:
        key = n if n in MASK_SETS else f"{n}_{suffix}"
        if key not in MASK_SETS:
            raise InputError(f"unknown mask set {n!r}; known: thick, medium, thin, {', '.join(MASK_SETS)}")
        out.append(MASK_SETS[key])
    return out


@dataclass(frozen=True)
class Segment:
    start: tuple[int, int]  # (x, y)
    end: tuple[int, int]
    width: int


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


def sample_strokes(
    rng: np.random.Generator, height: int, width: int, cfg: StrokeConfig
) -> list[list[Segment]]:
    """Polylines of segments, drawn as LaMa's irregular generator does (draws batched per mask)."""
    lo, hi = cfg.times_range
    times = int(rng.integers(lo, hi + 1))
    xs, ys = rng.integers(width, size=times).tolist(), rng.integers(height, size=times).tolist()
    nsegs = (1 + rng.integers(5, size=times)).tolist()
    total = sum(nsegs)
    angles = (0.01 + rng.integers(cfg.max_angle, size=total)).tolist()
    lengths = (10 + rng.integers(cfg.max_len, size=total)).tolist()
    widths = (5 + rng.integers(cfg.max_width, size=total)).tolist()
    lines, k = [], 0
    for i in range(times):
        x, y = xs[i], ys[i]
        segs = []
        for _ in range(nsegs[i]):
            angle = _TWO_PI - angles[k] if i % 2 == 0 else angles[k]
            ex = min(max(int(x + lengths[k] * math.sin(angle)), 0), width)
            ey = min(max(int(y + lengths[k] * math.cos(angle)), 0), height)
            segs.append(Segment((x, y), (ex, ey), widths[k]))
            x, y = ex, ey
            k += 1
        lines.append(segs)
    return lines


def sample_boxes(rng: np.random.Generator, height: int, width: int, cfg: BoxConfig) -> list[Box]:
    lo, hi = cfg.size_range(height, width)
    boxes = []
    for _ in range(int(rng.integers(cfg.min_times, cfg.max_times + 1))):
        bw, bh = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        x = int(rng.integers(cfg.margin, width - cfg.margin - bw + 1))
        y = int(rng.integers(cfg.margin, height - cfg.margin - bh + 1))
        boxes.append(Box(x, y, bw, bh))
    return boxes


def rasterize(height: int, width: int, lines: list[list[Segment]] = (), boxes: list[Box] = ()) -> np.ndarray:
    """(H, W) uint8 mask, 1 = hole."""
    mask = np.zeros((height, width), np.uint8)
    for segs in lines:
        for s in segs:
            cv2.line(mask, s.start, s.end, 1, s.width)
    for b in boxes:
        mask[b.y : b.y + b.height, b.x : b.x + b.width] = 1
    return mask


class Kind(str, enum.Enum):
    STROKES = "strokes"
    BOXES = "boxes"


def pick_kind(rng: np.random.Generator, cfg: MaskSetConfig) -> Kind:
    """Which generator draws the next mask: irregular : box by the configured probabilities."""
    if cfg.boxes is None or cfg.box_proba <= 0:
        return Kind.STROKES
    u = rng.random() * (cfg.stroke_proba + cfg.box_proba)
    return Kind.BOXES if u >= cfg.stroke_proba else Kind.STROKES


def draw_variant(rng: np.random.Generator, cfg: MaskSetConfig, height: int, width: int) -> np.ndarray:
    """One mask from one generator (see ``pick_kind``)."""
    if pick_kind(rng, cfg) is Kind.BOXES:
        return rasterize(height, width, boxes=sample_boxes(rng, height, width, cfg.boxes))
    return rasterize(height, width, lines=sample_strokes(rng, height, width, cfg.strokes))


def generate_mask(cfg: MaskSetConfig, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """(size, size) uint8 {0, 1} mask of the set: one of ``variants`` draws under ``max_area``.

    Drawn on the set's own canvas (256 or 512) and resized (nearest) to ``size`` when that differs, so a
    set keeps its coverage statistics at any image size.
    """
    for _ in range(100):
        variants = [draw_variant(rng, cfg, cfg.size, cfg.size) for _ in range(cfg.variants)]
        kept = [m for m in variants if m.mean() <= cfg.max_area]
        if kept:
            m = kept[int(rng.integers(len(kept)))]
            if size is not None and size != cfg.size:
                m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
            return m
    raise RuntimeError(f"mask set {cfg.name}: no mask under {cfg.max_area:.0%} coverage in 100 rounds")


def mask_rng(seed: int, key: str, set_name: str) -> np.random.Generator:
    """A generator per (seed, image key, mask set): one image's mask does not depend on the others."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), zlib.crc32(set_name.encode())])
