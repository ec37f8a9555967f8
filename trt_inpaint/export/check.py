"""``export-engines --check``: compare what was built against the fp32 ONNX on the calibration set.

With a GPU and a TensorRT module: each engine (polygraphy's TrtRunner) against the fp32 ONNX in ONNX
Runtime. Without: the fp16 ONNX in ONNX Runtime CPU, and its fp16 storage simulation, against the fp32
ONNX (see ``fp16_check.CPU_CAVEAT`` for what a CPU check can and cannot see). One table either way; max
|diff| and PSNR are taken over the hole pixels (``fp16_check.Comparison``).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_inpaint.export import spec as S
from trt_inpaint.export.calibration import CalibrationOptions, CalibrationSet
from trt_inpaint.export.fp16_check import CPU_CAVEAT, Comparison, compare, hole_masks, simulate
from trt_inpaint.export.manifest import StageRecord, read_manifest
from trt_inpaint.export.segmented import run_onnx


@dataclass
class CheckRow:
    stage: str
    precision: str
    compared: str
    comparison: Comparison | None  # None: not run (the reason is in ``compared``)


def gpu_available() -> bool:
    """An NVIDIA GPU answers nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _ordered(records: dict[str, StageRecord]) -> list[StageRecord]:
    return [records[s.value] for s in S.Stage if s.value in records]


class Checker:
    def __init__(
        self, out_dir: Path, calibration: CalibrationOptions, progress: Callable[[str], None] | None = None
    ):
        self.out = Path(out_dir)
        self.manifest = read_manifest(self.out, missing_ok=False)
        self.calib = CalibrationSet(calibration)
        self.progress = progress or (lambda m: None)
        self._ref: dict[S.Stage, list[np.ndarray]] = {}
        self._fp16: dict[S.Stage, list[np.ndarray]] = {}

    def _file(self, stage: S.Stage, precision: S.Precision) -> Path:
        return self.out / S.onnx_filename(stage, precision)

    def reference(self, stage: S.Stage) -> list[np.ndarray] | None:
        """fp32 ONNX outputs, each stage fed by its upstream stages' fp32 outputs."""
        if stage not in self._ref:
            if not self._file(stage, S.Precision.FP32).is_file():
                return None
            feeds = self.calib.feeds(stage, self.reference)
            self.progress(f"{stage}: fp32 ONNX")
            self._ref[stage] = run_onnx(self._file(stage, S.Precision.FP32), feeds)
        return self._ref[stage]

    def fp16_chain(self, stage: S.Stage) -> list[np.ndarray] | None:
        """fp16 ONNX outputs (ONNX Runtime CPU), each stage fed by its upstream stages' fp16 outputs."""
        if stage not in self._fp16:
            if not self._file(stage, S.Precision.FP16).is_file():
                return None
            feeds = self.calib.feeds(stage, self.fp16_chain)
            self._fp16[stage] = run_onnx(self._file(stage, S.Precision.FP16), feeds)
        return self._fp16[stage]

    def cpu_rows(self) -> list[CheckRow]:
        import onnx

        rows = []
        records = _ordered(self.manifest.stages)
        for rec in records:
            stage = S.Stage(rec.stage)
            ref = self.reference(stage)
            if ref is None:
                rows.append(CheckRow(rec.stage, rec.precision, "fp32 ONNX missing", None))
                continue
            if rec.precision != S.Precision.FP16.value:
                rows.append(CheckRow(rec.stage, rec.precision, "engine vs ONNX: needs a GPU", None))
                continue
            feeds = self.calib.feeds(stage, self.reference)
            self.progress(f"{stage}: fp16 ONNX")
            holes = hole_masks(feeds)
            got = run_onnx(self._file(stage, S.Precision.FP16), feeds)
            rows.append(
                CheckRow(rec.stage, "fp16", "fp16 ONNX (ORT CPU) vs fp32 ONNX", compare(ref, got, holes))
            )
            islands = [i["node"] for i in rec.artefacts["onnx_fp16"].info.get("fp32_islands", [])]
            sim = simulate(onnx.load(str(self._file(stage, S.Precision.FP32))), islands)
            self.progress(f"{stage}: fp16 storage simulation")
            got = run_onnx(sim.SerializeToString(), feeds)
            rows.append(CheckRow(rec.stage, "fp16", "fp16-sim vs fp32 ONNX", compare(ref, got, holes)))
        last = S.PIPELINES[S.Pipeline.ENSEMBLE][-1].stage
        names = {r.stage for r in records}
        if all(s.value in names for s in S.pipeline_stages(S.Pipeline.ENSEMBLE)) and all(
            r.precision == "fp16" for r in records
        ):
            self.progress("ensemble: fp16 chain")
            rows.append(
                CheckRow(
                    "ensemble",
                    "fp16",
                    "fp16 ONNX chain vs fp32 chain",
                    compare(self.reference(last), self.fp16_chain(last), hole_masks(self.calib.feeds(last))),
                )
            )
        return rows

    def gpu_rows(self) -> list[CheckRow]:
        """Each engine against the fp32 ONNX (ONNX Runtime), through polygraphy."""
        rows = []
        for rec in _ordered(self.manifest.stages):
            stage = S.Stage(rec.stage)
            eng = rec.artefacts.get("engine")
            if eng is None:
                rows.append(CheckRow(rec.stage, rec.precision, "no engine (built with --builder none)", None))
                continue
            builder = eng.info.get("builder", "tensorrt")
            if builder == "tensorrt-rtx":
                os.environ["POLYGRAPHY_USE_TENSORRT_RTX"] = "1"  # read when polygraphy's trt backend imports
            from polygraphy.backend.trt import EngineFromBytes, TrtRunner

            ref = self.reference(stage)
            feeds = self.calib.feeds(stage, self.reference)
            self.progress(f"{stage}: engine ({builder})")
            out = []
            with TrtRunner(EngineFromBytes((self.out / eng.file).read_bytes())) as runner:
                for f in feeds:
                    out.append(np.asarray(runner.infer(f)[S.spec(stage).output_names[0]]))
            rows.append(
                CheckRow(
                    rec.stage,
                    rec.precision,
                    f"engine ({builder}) vs fp32 ONNX (ORT)",
                    compare(ref, out, hole_masks(feeds)),
                )
            )
        return rows


def run_check(
    out_dir: Path,
    calibration: CalibrationOptions | None = None,
    progress: Callable[[str], None] | None = None,
    use_gpu: bool | None = None,
) -> tuple[list[CheckRow], str]:
    """The rows of the check table and a note on what was compared."""
    checker = Checker(out_dir, calibration or CalibrationOptions(), progress)
    gpu = gpu_available() if use_gpu is None else use_gpu
    if gpu:
        return checker.gpu_rows(), "engines on this GPU vs fp32 ONNX in ONNX Runtime"
    return checker.cpu_rows(), "no GPU here: " + CPU_CAVEAT


def format_table(rows: list[CheckRow], note: str = "") -> str:
    head = ("stage", "precision", "compared", "hole max|diff|", "hole PSNR dB", "NaN/inf")
    body = []
    for r in rows:
        c = r.comparison
        if c is None:
            body.append((r.stage, r.precision, r.compared, "-", "-", "-"))
        else:
            psnr = "inf" if math.isinf(c.psnr_db) else f"{c.psnr_db:.1f}"
            body.append((r.stage, r.precision, r.compared, f"{c.max_abs_diff:.2e}", psnr, str(c.nonfinite)))
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if note:
        lines.append(f"note: {note}")
    return "\n".join(lines)
