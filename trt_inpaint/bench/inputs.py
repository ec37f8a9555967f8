"""Benchmark inputs: the real sample photos and masks shipped with the package, at the size asked."""

from __future__ import annotations

import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import Role, Stage, random_feeds, spec
from trt_inpaint.samples import sample_pairs


def sample_batch(size: int, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(image (B,3,S,S) float32 in [0,1], mask (B,1,S,S) float32 {0,1}, 1 = hole) from the sample photos."""
    import cv2

    pairs = sample_pairs()
    if not pairs:
        raise InputError("no sample images shipped with the package")
    images, masks = [], []
    for i in range(batch):
        img_path, mask_path = pairs[i % len(pairs)]
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None:
            raise InputError("sample image or mask is not readable", img_path if img is None else mask_path)
        img = cv2.resize(
            img, (size, size), interpolation=cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_CUBIC
        )
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
        images.append(img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0)
        masks.append((mask > 127).astype(np.float32)[None])
    return np.ascontiguousarray(np.stack(images)), np.ascontiguousarray(np.stack(masks))


def stage_inputs(stage: Stage, size: int, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Feeds for one stage alone: sample images for every IMAGE input, the sample mask, spec noise."""
    image, mask = sample_batch(size, batch)
    noise = random_feeds(stage, batch, seed)
    feeds = {}
    for t in spec(stage).inputs:
        feeds[t.name] = image if t.role is Role.IMAGE else mask if t.role is Role.MASK else noise[t.name]
    return feeds
