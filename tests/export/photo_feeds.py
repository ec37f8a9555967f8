"""Stage inputs from the shipped photos, by the spec's input roles (no tensor names spelled here)."""

from __future__ import annotations

import numpy as np

from trt_inpaint.export import spec as S
from trt_inpaint.export.calibration import noise_feeds, read_pair
from trt_inpaint.samples import sample_pairs


def photo_feeds(stage: S.Stage, h: int, w: int, first: int, noise_seed: int) -> dict[str, np.ndarray]:
    """Inputs of ``stage`` at h x w: image inputs get photo ``first`` (a second one, the combiner's MAT
    input, photo ``first + 1``), masks the mask of photo ``first``, MAT noise ``noise_feeds(noise_seed)``
    at the spec's shapes (the stage boundary; a reduced MAT's wrapper crops it)."""
    pairs = sample_pairs()
    image, mask = read_pair(*pairs[first], (h, w))
    other, _ = read_pair(*pairs[first + 1], (h, w))
    photos = iter([image, other])
    noise = noise_feeds(stage, noise_seed)
    feeds = {}
    for t in S.spec(stage).inputs:
        if t.role is S.Role.IMAGE:
            feeds[t.name] = next(photos)
        elif t.role is S.Role.MASK:
            feeds[t.name] = mask
        else:
            feeds[t.name] = noise[t.name]
    return feeds
