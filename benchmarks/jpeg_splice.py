"""What a JPEG output does to the pixels the runtime did not write: whole re-encode at 95 vs splice.

For each shipped photo (a real JPEG) and its shipped mask: the hole is filled by OpenCV's inpainting
(Telea), then the file is written the old way (trt_inpaint.runtime.imaging's whole-image encode at
quality 95) and by splice_jpeg. Both are decoded by OpenCV and compared with the decoded input over the
known pixels (everything outside the hole): max |diff| and PSNR, plus PSNR inside the hole against the
pixels handed in, file sizes and the splice's time.

    PYTHONPATH=. python benchmarks/jpeg_splice.py [photo ...]

Each photo twice: the shipped file, and the same pixels re-saved as a 4:4:4 file at quality 95.
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np

from trt_inpaint.runtime import imaging
from trt_inpaint.runtime.jpeg_splice import splice_jpeg
from trt_inpaint.samples import SAMPLES_DIR


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _row(name: str, resave: int | None) -> str:
    path = SAMPLES_DIR / "images" / f"{name}.jpg"
    original = path.read_bytes()
    if resave:  # the photo as a 4:4:4 file of this quality (what cameras and editors write at high quality)
        pixels = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_UNCHANGED)
        params = [cv2.IMWRITE_JPEG_QUALITY, resave, cv2.IMWRITE_JPEG_SAMPLING_FACTOR]
        original = cv2.imencode(".jpg", pixels, params + [cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])[1].tobytes()
    decoded = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_UNCHANGED)
    hole = cv2.imread(str(SAMPLES_DIR / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
    filled = cv2.inpaint(decoded, hole.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    rgb = imaging.bgr_to_rgb(filled)
    old = imaging._encode(rgb, ".jpg", path)
    t0 = time.perf_counter()
    new = splice_jpeg(original, rgb, hole)
    seconds = time.perf_counter() - t0
    cells = [f"{name} {decoded.shape[1]}x{decoded.shape[0]}", f"{hole.mean():.1%}"]
    for data in (old, new.data):
        out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        known = np.abs(out.astype(int) - decoded.astype(int))[~hole]
        cells += [
            str(known.max()),
            f"{_psnr(out[~hole], decoded[~hole]):.1f}",
            f"{_psnr(out[hole], filled[hole]):.1f}",
        ]
    out = cv2.imdecode(np.frombuffer(new.data, np.uint8), cv2.IMREAD_UNCHANGED)
    same = out == decoded if out.ndim == 2 else (out == decoded).all(axis=2)
    cells += [
        f"{same[~hole].mean():.1%}",
        str(len(original)),
        str(len(old)),
        str(len(new.data)),
        f"{seconds * 1000:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main(names: list[str]) -> None:
    names = names or sorted(p.stem for p in (SAMPLES_DIR / "images").glob("*.jpg"))
    for resave in (None, 95):
        print(
            "\nAs shipped (4:2:0, quality 90; brick grey):"
            if resave is None
            else "\nRe-saved 4:4:4 quality 95:"
        )
        _table(names, resave)


def _table(names: list[str], resave: int | None) -> None:
    print(
        "| photo | hole | q95: max diff known | q95: PSNR known dB | q95: PSNR hole dB "
        "| splice: max diff known | splice: PSNR known dB | splice: PSNR hole dB | splice: known bit-exact "
        "| bytes in | bytes q95 | bytes splice | splice ms |"
    )
    print("|" + "---|" * 13)
    for name in names:
        print(_row(name, resave))


if __name__ == "__main__":
    main(sys.argv[1:])
