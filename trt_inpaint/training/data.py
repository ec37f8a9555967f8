"""prepare-data: a Places365-style tree (or a flat folder) -> 256x256 RGB PNGs, LaMa-style masks, an index.

Layout written under DST (all paths in the index are relative to DST):

    images/<category>/<stem>.png          RGB, size x size
    masks/<set>/<category>/<stem>.png     0/255 grey PNG, 255 = hole
    index.json                            settings, items, dropped files and why
    outputs/<model>/<set>/<category>/<stem>.png   written later by cache-outputs and evaluate

A category is the folder of an image relative to SRC (nested categories such as ``a/apartment/indoor``
keep their path); images directly in SRC form the category ``.``. Everything is deterministic by seed:
which images a category contributes and every mask (one generator per image and set).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from trt_inpaint import atomic
from trt_inpaint.errors import InputError
from trt_inpaint.training.masks import MaskSetConfig, generate_mask, mask_rng, resolve_mask_sets

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
INDEX_NAME = "index.json"
OUTPUTS_DIR = "outputs"  # outputs/<model>/<set>/<key>.png: cache-outputs (lama, mat) and evaluate (ensemble)
INDEX_VERSION = 1
FLAT_CATEGORY = "."


@dataclass(frozen=True)
class PrepareOptions:
    per_class: int = 20
    size: int = 256
    masks: str = "thick,medium,thin"
    seed: int = 0


@dataclass
class Item:
    key: str  # "<category>/<stem>", unique
    category: str
    source: str  # path relative to SRC
    image: str  # relative to DST
    masks: dict[str, str] = field(default_factory=dict)  # set name -> path relative to DST


@dataclass
class Index:
    root: Path
    size: int
    seed: int
    mask_sets: list[str]
    items: list[Item]
    dropped: list[dict[str, str]] = field(default_factory=list)

    def image_path(self, item: Item) -> Path:
        return self.root / item.image

    def mask_path(self, item: Item, mask_set: str) -> Path:
        return self.root / item.masks[mask_set]

    def output_path(self, model: str, item: Item, mask_set: str) -> Path:
        return output_path(self.root, model, mask_set, item.key)

    def to_json(self) -> dict:
        return {
            "version": INDEX_VERSION,
            "size": self.size,
            "seed": self.seed,
            "mask_sets": self.mask_sets,
            "items": [asdict(i) for i in self.items],
            "dropped": self.dropped,
        }


def load_index(root: str | Path) -> Index:
    root = Path(root)
    path = root / INDEX_NAME
    if not path.is_file():
        raise InputError("no index.json here: run prepare-data first", root)
    try:
        d = json.loads(path.read_text())
        items = [Item(**i) for i in d["items"]]
        return Index(root, int(d["size"]), int(d["seed"]), list(d["mask_sets"]), items, d.get("dropped", []))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"damaged index ({e})", path) from e


def output_path(root: str | Path, model: str, mask_set: str, key: str) -> Path:
    """Where a model's output for (image key, mask set) lives under a prepared data folder."""
    return Path(root) / OUTPUTS_DIR / model / mask_set / f"{key}.png"


# ---- reading ------------------------------------------------------------------------------------------


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Raises InputError if unreadable or not 3-channel."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("cannot read image", path)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"not a 3-channel image (shape {img.shape})", path)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"unsupported pixel type {img.dtype}", path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path, threshold: int = 127) -> np.ndarray:
    """(H, W) float32 {0, 1}, 1 = hole: any grey or colour mask, thresholded as the paper does."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError("cannot read mask", path)
    _, m = cv2.threshold(m, threshold, 1, cv2.THRESH_BINARY)
    return m.astype(np.float32)


def write_png(path: Path, array: np.ndarray) -> None:
    """Atomic PNG write; ``array`` is (H, W) grey or (H, W, 3) RGB uint8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    with atomic.atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), array):
            raise InputError("cannot write", path)


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


# ---- discovery ----------------------------------------------------------------------------------------


def find_categories(src: Path) -> dict[str, list[Path]]:
    """category -> image files (sorted). Flat folder: one category ``.``."""
    if not src.is_dir():
        raise InputError("not a folder", src)
    cats: dict[str, list[Path]] = {}
    for p in sorted(src.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            rel = p.parent.relative_to(src).as_posix()
            cats.setdefault(rel or FLAT_CATEGORY, []).append(p)
    if not cats:
        raise InputError(f"no images ({', '.join(IMAGE_EXTS)}) found", src)
    return cats


def _category_order(files: list[Path], seed: int, category: str) -> list[Path]:
    rng = np.random.default_rng([seed, zlib.crc32(category.encode())])
    return [files[i] for i in rng.permutation(len(files))]


# ---- prepare-data ---------------------------------------------------------------------------------------


def prepare_data(src: str | Path, dst: str | Path, opts: PrepareOptions, progress: bool = True) -> Index:
    """Select, drop, resize, mask and index (see module doc). Returns the index written to DST."""
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if opts.per_class < 1:
        raise InputError(f"--per-class must be >= 1, got {opts.per_class}")
    if opts.size < 8:
        raise InputError(f"--size must be >= 8, got {opts.size}")
    sets: list[MaskSetConfig] = resolve_mask_sets(opts.masks, opts.size)
    cats = find_categories(src)
    items: list[Item] = []
    dropped: list[dict[str, str]] = []
    bar = tqdm(
        total=sum(min(opts.per_class, len(v)) for v in cats.values()), disable=not progress, unit="img"
    )
    for cat, files in cats.items():
        taken = 0
        for f in _category_order(files, opts.seed, cat):
            if taken == opts.per_class:
                break
            rel_src = f.relative_to(src).as_posix()
            try:
                rgb = read_rgb(f)
            except InputError as e:
                dropped.append({"source": rel_src, "reason": str(e).split(": ", 1)[-1]})
                continue
            key = f"{cat}/{f.stem}" if cat != FLAT_CATEGORY else f.stem
            item = Item(key=key, category=cat, source=rel_src, image=f"images/{key}.png")
            write_png(dst / item.image, resize_square(rgb, opts.size))
            for s in sets:
                m = generate_mask(s, mask_rng(opts.seed, key, s.name), opts.size)
                item.masks[s.name] = f"masks/{s.name}/{key}.png"
                write_png(dst / item.masks[s.name], m * np.uint8(255))
            items.append(item)
            taken += 1
            bar.update(1)
            bar.set_postfix(dropped=len(dropped))
    bar.close()
    if not items:
        raise InputError("no usable 3-channel images", src)
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        raise InputError("two images share a category and a file stem (e.g. a.jpg and a.png)", src)
    index = Index(dst, opts.size, opts.seed, [s.name for s in sets], items, dropped)
    atomic.write_text(dst / INDEX_NAME, json.dumps(index.to_json(), indent=1))
    return index


def split_items(items: list[Item], val_fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Deterministic train/validation split by seed (at least one validation item when fraction > 0)."""
    if not 0 <= val_fraction < 1:
        raise InputError(f"validation fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(len(items) * val_fraction))
    if val_fraction > 0:
        n_val = max(1, n_val)
    if n_val >= len(items):
        raise InputError(f"{len(items)} items are too few for a validation split of {val_fraction}")
    order = np.random.default_rng([seed, 7]).permutation(len(items))
    val = {int(i) for i in order[:n_val]}
    return [it for k, it in enumerate(items) if k not in val], [it for k, it in enumerate(items) if k in val]
