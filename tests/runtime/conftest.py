"""Fixtures for the runtime tests: stand-in ONNX stages (no torch) and the shipped sample photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.standins import write_standins


@pytest.fixture(scope="session", autouse=True)
def _private_footprint_cache(tmp_path_factory):
    """The CLI records footprints in the user's cache folder: keep the tests' out of it."""
    import os

    old = os.environ.get("TRT_INPAINT_CACHE_DIR")
    os.environ["TRT_INPAINT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("TRT_INPAINT_CACHE_DIR", None)
    else:
        os.environ["TRT_INPAINT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def engines(tmp_path_factory) -> Path:
    """An engines folder with fp32 stand-ins of all five stages."""
    return write_standins(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="session")
def samples() -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(RGB uint8 image, grey uint8 mask, name) for each shipped sample photo."""
    from trt_inpaint.samples import sample_pairs

    out = []
    for img, mask in sample_pairs():
        rgb = cv2.cvtColor(cv2.imread(str(img), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out.append((rgb, cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE), img.stem))
    return out
