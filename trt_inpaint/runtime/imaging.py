"""Images and masks: read and validate, threshold, convert to the stage convention, composite, write.

Arrays handed around here are HxW (grey) or HxWxC with C in 1..4, channels in RGB(A) order, dtype
uint8, uint16 or float32 (in [0, 1]). Files are decoded with OpenCV (BGR) and turned to RGB on read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from trt_inpaint import atomic
from trt_inpaint.errors import InputError
from trt_inpaint.runtime import exif, hd

MASK_THRESHOLD = 127  # on the 8-bit scale, as the paper does: hole where value > 127
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)
_LOSSY_8BIT = {".jpg", ".jpeg", ".jpe", ".webp"}


@dataclass
class ImageFile:
    """A decoded image: pixels upright (EXIF applied), RGB(A) order, the file's suffix, bytes and the
    EXIF orientation that was applied."""

    pixels: np.ndarray
    suffix: str
    path: Path
    data: bytes = b""
    orientation: int = 1


def _decode(path: Path, what: str) -> tuple[np.ndarray, bytes, int]:
    """Bytes -> (array upright in RGB order, the bytes, the EXIF orientation applied). One-line InputError
    for every way a file can be bad."""
    if not path.exists():
        raise InputError(f"{what} not found", path)
    if path.is_dir():
        raise InputError(f"{what} is a folder, expected a file", path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror or e}", path) from e
    return decode_bytes(data, what, path)


def decode_bytes(data: bytes, what: str, path: Path | None = None) -> tuple[np.ndarray, bytes, int]:
    """An encoded file's bytes -> (array upright in RGB order, the bytes, the EXIF orientation applied).
    ``path`` names the file (or the field it came in) in errors."""
    if not data:
        raise InputError(f"{what} is an empty file", path)
    pixels = cv2.imdecode(np.frombuffer(exif.without_orientation(data), np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputError(f"{what} is not an image OpenCV can decode (PNG, JPEG, WebP, TIFF, ...)", path)
    if pixels.size == 0 or min(pixels.shape[:2]) == 0:
        raise InputError(f"{what} has zero size {pixels.shape}", path)
    turn = exif.orientation(data)
    return bgr_to_rgb(exif.apply_orientation(pixels, turn)), data, turn


def bgr_to_rgb(a: np.ndarray) -> np.ndarray:
    """Swap the first and third channel of a 3- or 4-channel array (self-inverse); others unchanged."""
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a.copy()
        a[..., [0, 2]] = a[..., [2, 0]]
    return a


def check_image(pixels: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Validate dtype and layout; returns the array (HxW or HxWxC, C in 1..4)."""
    if not isinstance(pixels, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(pixels).__name__}", path)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and not 1 <= pixels.shape[2] <= 4):
        raise InputError(f"image must be HxW or HxWxC with 1 to 4 channels, got shape {pixels.shape}", path)
    if pixels.size == 0 or min(pixels.shape[:2]) == 0:
        raise InputError(f"image has zero size {pixels.shape}", path)
    if pixels.dtype.type not in SUPPORTED_DTYPES:
        raise InputError(f"image dtype {pixels.dtype} not supported (uint8, uint16 or float32)", path)
    return pixels


def read_image(path: str | Path) -> ImageFile:
    path = Path(path)
    pixels, data, turn = _decode(path, "image")
    return ImageFile(check_image(pixels, path), path.suffix.lower(), path, data, turn)


def image_from_bytes(data: bytes, name: str, suffix: str) -> ImageFile:
    """An image received as bytes (e.g. an upload): ``name`` labels it in errors, ``suffix`` is its format."""
    path = Path(name)
    pixels, data, turn = decode_bytes(data, "image", path)
    return ImageFile(check_image(pixels, path), suffix.lower(), path, data, turn)


def read_mask(path: str | Path) -> np.ndarray:
    path = Path(path)
    return _decode(path, "mask")[0]


def threshold_mask(mask: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Bool HxW hole map from a grey or colour mask: any colour channel above 127 (8-bit scale).

    uint16 masks are compared on the 8-bit scale, floats against 127/255, bools taken as they are.
    An alpha channel (4 channels) limits the hole to opaque pixels.
    """
    if not isinstance(mask, np.ndarray) or mask.ndim not in (2, 3) or mask.size == 0:
        raise InputError(
            f"mask must be a non-empty HxW or HxWxC array, got {getattr(mask, 'shape', mask)}", path
        )
    m = mask
    if m.dtype == np.bool_:
        m = m.astype(np.uint8) * 255
    elif m.dtype == np.uint16:
        m = (m // 257).astype(np.uint8)
    elif m.dtype.kind == "f":
        m = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)
    elif m.dtype != np.uint8:
        raise InputError(f"mask dtype {m.dtype} not supported", path)
    if m.ndim == 3:
        if m.shape[2] == 4:
            m = np.minimum(m[..., :3].max(axis=2), m[..., 3])
        elif m.shape[2] == 2:
            m = np.minimum(m[..., 0], m[..., 1])
        else:
            m = m.max(axis=2)
    return m > MASK_THRESHOLD


def fit_mask(hole: np.ndarray, shape: tuple[int, int], resize: bool, path: Path | None = None) -> np.ndarray:
    """The hole map at the image's size: an error on mismatch unless ``resize`` (nearest neighbour)."""
    if hole.shape == tuple(shape):
        return hole
    if not resize:
        raise InputError(
            f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is {shape[1]}x{shape[0]} "
            "(use --resize-mask to resize it)",
            path,
        )
    return cv2.resize(hole.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0


def _scale(dtype: np.dtype) -> float:
    return {np.uint8: 255.0, np.uint16: 65535.0}.get(dtype.type, 1.0)


def to_float_rgb(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 float32 RGB in [0, 1] (grey replicated, alpha dropped)."""
    x = pixels.astype(np.float32) / _scale(pixels.dtype)
    if x.ndim == 2:
        x = x[..., None]
    c = x.shape[2]
    if c <= 2:
        x = np.repeat(x[..., :1], 3, axis=2)
    else:
        x = x[..., :3]
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0))


def from_float_rgb(rgb: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> the layout and dtype of ``like`` (colour channels only, no alpha)."""
    rgb = np.clip(rgb, 0.0, 1.0)
    colour = 1 if like.ndim == 2 or like.shape[2] <= 2 else 3
    if colour == 1:
        rgb = (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if like.dtype.kind != "f":
        rgb = np.rint(rgb * _scale(like.dtype)).astype(like.dtype)
    else:
        rgb = rgb.astype(like.dtype)
    return rgb


def composite(original: np.ndarray, result: np.ndarray, geo: hd.Geometry, hole: np.ndarray) -> np.ndarray:
    """A copy of ``original`` whose hole pixels inside the geometry's region come from ``result``.

    ``result`` is the stage output back at the region's size (HxWx3 float). Alpha and every pixel outside
    the hole are copied bit for bit.
    """
    out = original.copy()
    region = out[geo.y0 : geo.y1, geo.x0 : geo.x1]
    sel = hole[geo.y0 : geo.y1, geo.x0 : geo.x1]
    new = from_float_rgb(result, original)
    if original.ndim == 2:
        region[sel] = new[..., 0][sel]
    else:
        k = new.shape[2]
        region[..., :k][sel] = new[sel]
    return out


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")


def same_format(a: str, b: str) -> bool:
    """Whether two suffixes name the same file format (".jpg" and ".JPEG" do)."""
    a, b = a.lower(), b.lower()
    return a == b or (a in JPEG_SUFFIXES and b in JPEG_SUFFIXES) or {a, b} == {".tif", ".tiff"}


def encode(pixels: np.ndarray, suffix: str, path: Path | None = None) -> bytes:
    """``pixels`` (RGB(A)) encoded as ``suffix``: a new JPEG at quality 95 (a JPEG from a JPEG is spliced
    instead: ``finish.encode``), WebP lossless, PNG/TIFF keep 16 bits.
    ``path`` only names the output in errors."""
    suffix = suffix.lower()
    a = pixels
    if suffix in _LOSSY_8BIT and a.dtype != np.uint8:
        a = np.rint(a.astype(np.float32) / _scale(a.dtype) * 255.0).astype(np.uint8)
    elif a.dtype.kind == "f" and suffix not in (".tif", ".tiff", ".exr", ".hdr"):
        a = np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    a = bgr_to_rgb(a)
    params: list[int] = []
    if suffix in JPEG_SUFFIXES:
        from trt_inpaint.runtime.jpeg_quality import DEFAULT_QUALITY

        params = [cv2.IMWRITE_JPEG_QUALITY, DEFAULT_QUALITY]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 101]  # above 100: lossless
        if hasattr(cv2, "IMWRITE_WEBP_LOSSLESS_PRESERVE_COLOR"):  # keep colour under alpha 0 (OpenCV >= 4.13)
            params += [cv2.IMWRITE_WEBP_LOSSLESS_MODE, cv2.IMWRITE_WEBP_LOSSLESS_PRESERVE_COLOR]
    try:
        ok, buf = cv2.imencode(suffix, a, params)
    except cv2.error as e:
        raise InputError(f"cannot encode a {a.dtype} image with {a.shape} as {suffix}: {e.msg}", path) from e
    if not ok:
        raise InputError(f"cannot encode the image as {suffix}", path)
    return buf.tobytes()


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write an encoded output atomically; InputError naming the file when its folder is missing or the
    write fails."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError("output folder does not exist", path.parent)
    try:
        atomic.write_bytes(path, data)
    except OSError as e:
        raise InputError(f"cannot write output: {e.strerror or e}", path) from e


def write_image(path: str | Path, pixels: np.ndarray, suffix: str | None = None) -> None:
    """Encode ``pixels`` (RGB(A)) in the format of ``suffix`` (default: the path's); write atomically."""
    path = Path(path)
    write_bytes(path, encode(pixels, suffix or path.suffix, path))
