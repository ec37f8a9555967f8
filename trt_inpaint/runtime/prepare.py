"""Step 1, prepare: decode, threshold, fit the mask, plan the HD crop/resize, build the working tensors.

Needs no engines and no pool (CPU only), so it runs in any thread or process: ``Inpainter.prepare`` and
``prepare_file`` call these with the Inpainter's options, a cluster's CPU tasks call them directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import pipeline_stages, spec
from trt_inpaint.runtime import hd, imaging
from trt_inpaint.runtime.options import InpaintOptions
from trt_inpaint.runtime.workitem import Source, WorkItem


def prepare(
    image: np.ndarray, mask: np.ndarray, options: InpaintOptions, source: Source | None = None
) -> WorkItem:
    """A work item from RGB(A) ``image`` and ``mask`` arrays (hole where > 127 on the 8-bit scale)."""
    path = Path(source.name) if source is not None and source.suffix else None
    image = imaging.check_image(image, path)
    hole = imaging.threshold_mask(mask)
    hole = imaging.fit_mask(hole, image.shape[:2], options.resize_mask)
    return _plan(image, hole, options, source or Source("image"))


def prepare_file(image_path: str | Path, mask_path: str | Path, options: InpaintOptions) -> WorkItem:
    """A work item from an image file and a mask file, each read and decoded once."""
    img = imaging.read_image(image_path)
    mask_path = Path(mask_path)
    return _with_mask(img, imaging.read_mask(mask_path), mask_path, options)


def prepare_pair(
    image_path: str | Path, mask_path: str | Path | None, output: str | Path, options: InpaintOptions
) -> WorkItem:
    """``prepare_file`` for one (image, mask, output) of a folder or listing run: a missing mask (None) and
    an output that would overwrite its input are ``InputError``s naming the file."""
    if mask_path is None:
        raise InputError("no mask found for this image", image_path)
    if Path(output).resolve() == Path(image_path).resolve():
        raise InputError("output would overwrite the input image", output)
    return prepare_file(image_path, mask_path, options)


def prepare_bytes(
    image: bytes,
    mask: bytes,
    options: InpaintOptions,
    *,
    suffix: str,
    name: str = "image",
    mask_name: str = "mask",
) -> WorkItem:
    """A work item from encoded image and mask bytes (e.g. uploads), decoded exactly as files are.
    ``suffix``: the image's format (the output's default); ``name``/``mask_name`` label them in errors."""
    img = imaging.image_from_bytes(image, name, suffix)
    mask_path = Path(mask_name)
    return _with_mask(img, imaging.decode_bytes(mask, "mask", mask_path)[0], mask_path, options)


def _with_mask(
    img: imaging.ImageFile, mask: np.ndarray, mask_path: Path, options: InpaintOptions
) -> WorkItem:
    hole = imaging.threshold_mask(mask, mask_path)
    hole = imaging.fit_mask(hole, img.pixels.shape[:2], options.resize_mask, mask_path)
    source = Source(str(img.path), img.suffix, img.data, img.orientation)
    return _plan(img.pixels, hole, options, source)


def _plan(image: np.ndarray, hole: np.ndarray, options: InpaintOptions, source: Source) -> WorkItem:
    item = WorkItem(source, image, hole, options.models, options.seed, None)
    if not hole.any():
        return item  # nothing to run: finish returns the input
    stages = [spec(s) for s in pipeline_stages(options.models)]
    geo = hd.plan(image.shape[0], image.shape[1], hole, options.hd, stages)
    rgb = hd.to_work(imaging.to_float_rgb(image), geo, is_mask=False)
    m = hd.to_work(hole.astype(np.float32), geo, is_mask=True)
    item.geometry = geo
    item.image = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
    item.mask = np.ascontiguousarray(m[None, None])
    return item
