"""Fixtures for the Ray tests: a local cluster per module, stand-in stages, real photos in four formats."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.ray_cluster import local_cluster
from tests.runtime.conftest import _private_footprint_cache, engines  # noqa: F401 (fixtures)
from trt_inpaint.samples import sample_pairs


@pytest.fixture(scope="module")
def cluster():
    """The address of this module's local Ray cluster (this process is connected to it)."""
    with local_cluster() as address:
        yield address


def write_photos(folder: Path, copies: int = 1) -> tuple[Path, Path]:
    """images/ and masks/ (matched by stem) from the shipped photos: 8-bit JPEGs as shipped, a 16-bit RGB
    PNG, an RGBA PNG, a grey PNG, and one photo with an empty mask (copied unchanged). ``copies`` > 1 repeats
    the set under other names (longer runs)."""
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    pairs = sample_pairs()
    for c in range(copies):
        tag = "" if c == 0 else f"_{c}"
        for k, (img, mask) in enumerate(pairs):
            bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
            stem = f"{img.stem}{tag}"
            if k == 1:
                deep = (
                    bgr.astype(np.uint16) * 257
                    + (np.arange(bgr.shape[1], dtype=np.uint16) % 200)[None, :, None]
                )
                name = f"{stem}_16bit.png"
                cv2.imwrite(str(images / name), deep)
            elif k == 2:
                alpha = np.tile(np.linspace(0, 255, bgr.shape[1], dtype=np.uint8), (bgr.shape[0], 1))[
                    ..., None
                ]
                name = f"{stem}_rgba.png"
                cv2.imwrite(str(images / name), np.concatenate([bgr, alpha], axis=2))
            elif k == 3:
                name = f"{stem}_grey.png"
                cv2.imwrite(str(images / name), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            else:
                name = f"{stem}.jpg"
                shutil.copy(img, images / name)
            mask_path = masks / f"{Path(name).stem}.png"
            if k == 5:
                cv2.imwrite(str(mask_path), np.zeros(bgr.shape[:2], np.uint8))  # empty: output = input
            else:
                shutil.copy(mask, mask_path)
    return images, masks


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, Path]:
    return write_photos(tmp_path_factory.mktemp("photos"))
