"""Real photos and masks shipped with the package (from scikit-image's public-domain / CC0 sample data,
resized to at most 512 px). Used as fp16 calibration inputs, by the tests and by the benchmarks."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).parent / "data" / "samples"


def sample_pairs() -> list[tuple[Path, Path]]:
    """(image, mask) paths, matched by file stem, sorted by name."""
    masks = {p.stem: p for p in (SAMPLES_DIR / "masks").glob("*.png")}
    return [(p, masks[p.stem]) for p in sorted((SAMPLES_DIR / "images").glob("*.jpg")) if p.stem in masks]
