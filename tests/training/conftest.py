"""Shared fixtures: a torchvision-format VGG16 file (seeded random weights), a prepared folder with caches."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from trt_inpaint.models.init import deterministic_init_
from trt_inpaint.samples import sample_pairs
from trt_inpaint.training.data import PrepareOptions, prepare_data, read_mask, read_rgb, write_png
from trt_inpaint.training.vgg import vgg16_features_layers

SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run faster on one thread, and much faster on a shared, busy machine; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def vgg16_file(tmp_path_factory) -> Path:
    """torchvision's key layout (``features.<i>.*`` plus a classifier entry), seeded random values."""
    feats = deterministic_init_(vgg16_features_layers(), seed=1)
    sd = {f"features.{k}": v for k, v in feats.state_dict().items()}
    sd["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save(sd, path)
    return path


def fake_outputs(index) -> None:
    """Stand-ins for cached LaMa / MAT outputs: ground truth outside the hole, a blur / a tint inside."""
    for it in index.items:
        gt = read_rgb(index.image_path(it)).astype(np.float32)
        for s in index.mask_sets:
            m = read_mask(index.mask_path(it, s))[..., None]
            lama = gt * (1 - m) + cv2.blur(gt, (7, 7)) * m
            mat = gt * (1 - m) + np.clip(gt * 0.8 + 40, 0, 255) * m
            write_png(index.output_path("lama", it, s), lama.round().astype(np.uint8))
            write_png(index.output_path("mat", it, s), mat.round().astype(np.uint8))


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """The shipped sample photos as a 2-category tree, prepared at 32x32 with two mask sets, fake caches."""
    root = tmp_path_factory.mktemp("prep")
    src = root / "src"
    for k, (img, _) in enumerate(sample_pairs()):
        cat = src / ("x/outdoor" if k % 2 else "y")
        cat.mkdir(parents=True, exist_ok=True)
        (cat / img.name).write_bytes(img.read_bytes())
    index = prepare_data(
        src,
        root / "data",
        PrepareOptions(per_class=10, size=SIZE, masks="thick,medium", seed=0),
        progress=False,
    )
    fake_outputs(index)
    return index
