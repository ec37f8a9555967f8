"""What a JPEG output does to the pixels the runtime did not write: whole re-encode at 95 vs splice.

For each shipped photo (a real JPEG) and its shipped mask: the hole is filled by OpenCV's inpainting
(Telea), then the file is written the old way (trt_inpaint.runtime.imaging's whole-image encode at
quality 95) and by splice_jpeg. Both are decoded by OpenCV and compared with the decoded input over the
known pixels (everything outside the hole): max |diff| and PSNR, plus PSNR inside the hole against the
pixels handed in, file sizes and the splice's time.

    python benchmarks/jpeg_splice.py [photo ...]
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


def _row(name: str) -> str:
    path = SAMPLES_DIR / "images" / f"{name}.jpg"
    original = path.read_bytes()
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
    cells += [str(len(original)), str(len(old)), str(len(new.data)), f"{seconds * 1000:.0f}"]
    return "| " + " | ".join(cells) + " |"


def main(names: list[str]) -> None:
    names = names or sorted(p.stem for p in (SAMPLES_DIR / "images").glob("*.jpg"))
    print(
        "| photo | hole | q95: max diff known | q95: PSNR known dB | q95: PSNR hole dB "
        "| splice: max diff known | splice: PSNR known dB | splice: PSNR hole dB "
        "| bytes in | bytes q95 | bytes splice | splice ms |"
    )
    print("|" + "---|" * 12)
    for name in names:
        print(_row(name))


if __name__ == "__main__":
    main(sys.argv[1:])
