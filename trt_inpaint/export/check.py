"""``export-engines --check``: compare what was built against the fp32 ONNX on the calibration set.

Decided per stage: where the stage has an engine, its TensorRT module imports, the engine was built for
this GPU and it loads, the engine (run by the runtime's own ``TrtRunner``, the code ``trt-inpaint`` runs)
against the fp32 ONNX in ONNX Runtime. Otherwise a row says why the engine was not compared, followed by
the CPU rows: the fp16 ONNX in ONNX Runtime CPU, and its fp16 storage simulation, against the fp32 ONNX
(see ``fp16_check.CPU_CAVEAT`` for what a CPU check can and cannot see). One table either way.

Each engine's runner imports the module the manifest names for it (``tensorrt`` or ``tensorrt_rtx``), so
a folder with engines of both builders gets the right module per stage. polygraphy's TRT wrapper is not
used: it picks its module once, from POLYGRAPHY_USE_TENSORRT_RTX when polygraphy is imported. (Both
modules loaded in one process has not been tried: full TensorRT does not install on the build machine.)
max |diff| and PSNR are taken over the hole pixels (``fp16_check.Comparison``).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_inpaint.errors import TrtInpaintError
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


def gpu_problem() -> str | None:
    """None when CUDA sees an NVIDIA GPU here (NVML), else why not."""
    from trt_inpaint.runtime import gpu

    return gpu.gpu_problem()


def collect(
    infer: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], feeds, name: str
) -> list[np.ndarray]:
    """Output ``name`` of ``infer`` for every feed, each copied: a runner may return views of host
    buffers that its next call overwrites (polygraphy's TrtRunner does)."""
    return [np.array(infer(f)[name], copy=True) for f in feeds]


def engine_problem(out_dir: Path, rec: StageRecord, no_gpu: str | None) -> str | None:
    """Why the engine of ``rec`` cannot be compared here (checked before touching it), or None."""
    from trt_inpaint.runtime import gpu
    from trt_inpaint.runtime.engines import EngineDir

    eng = rec.artefacts.get("engine")
    if eng is None:
        return "no engine (built with --builder none)"
    if no_gpu:
        return f"no GPU here ({no_gpu})"
    facts = EngineDir(out_dir).stage_facts(S.Stage(rec.stage))
    module = facts.trt_module or "tensorrt"
    if module == "tensorrt_rtx" and facts.compute_capabilities:
        cc = gpu.shared_compute_capability()
        problem = gpu.target_problem(list(facts.compute_capabilities), cc) if cc else None
        if problem:
            return problem
    if importlib.util.find_spec(module) is None:
        return f"the engine's module {module} is not installed here"
    if not (Path(out_dir) / eng.file).is_file():
        return f"{eng.file} is missing"
    return None


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

    def cpu_stage_rows(self, rec: StageRecord) -> list[CheckRow]:
        """The fp16 ONNX (ORT CPU) and its storage simulation against the fp32 ONNX."""
        import onnx

        stage = S.Stage(rec.stage)
        ref = self.reference(stage)
        if ref is None:
            return [CheckRow(rec.stage, rec.precision, "fp32 ONNX missing", None)]
        if rec.precision != S.Precision.FP16.value:
            return [CheckRow(rec.stage, rec.precision, "engine vs ONNX: needs a GPU", None)]
        feeds = self.calib.feeds(stage, self.reference)
        self.progress(f"{stage}: fp16 ONNX")
        holes = hole_masks(feeds)
        got = run_onnx(self._file(stage, S.Precision.FP16), feeds)
        rows = [CheckRow(rec.stage, "fp16", "fp16 ONNX (ORT CPU) vs fp32 ONNX", compare(ref, got, holes))]
        islands = [i["node"] for i in rec.artefacts["onnx_fp16"].info.get("fp32_islands", [])]
        sim = simulate(onnx.load(str(self._file(stage, S.Precision.FP32))), islands)
        self.progress(f"{stage}: fp16 storage simulation")
        got = run_onnx(sim.SerializeToString(), feeds)
        rows.append(CheckRow(rec.stage, "fp16", "fp16-sim vs fp32 ONNX", compare(ref, got, holes)))
        return rows

    def ensemble_row(self, records: list[StageRecord]) -> list[CheckRow]:
        """The fp16 ONNX chain against the fp32 chain, when every ensemble stage is there in fp16."""
        last = S.PIPELINES[S.Pipeline.ENSEMBLE][-1].stage
        names = {r.stage for r in records}
        if not all(s.value in names for s in S.pipeline_stages(S.Pipeline.ENSEMBLE)) or not all(
            r.precision == "fp16" for r in records
        ):
            return []
        self.progress("ensemble: fp16 chain")
        return [
            CheckRow(
                "ensemble",
                "fp16",
                "fp16 ONNX chain vs fp32 chain",
                compare(self.reference(last), self.fp16_chain(last), hole_masks(self.calib.feeds(last))),
            )
        ]

    def cpu_rows(self) -> list[CheckRow]:
        records = _ordered(self.manifest.stages)
        return [row for rec in records for row in self.cpu_stage_rows(rec)] + self.ensemble_row(records)

    def engine_row(self, rec: StageRecord) -> tuple[CheckRow | None, str | None]:
        """The engine against the fp32 ONNX (ONNX Runtime), or (None, why it could not run)."""
        from trt_inpaint.runtime.backends.base import Backend
        from trt_inpaint.runtime.backends.registry import Selection, make_runner
        from trt_inpaint.runtime.engines import EngineDir

        stage = S.Stage(rec.stage)
        ref = self.reference(stage)
        if ref is None:
            return None, "fp32 ONNX missing"
        builder = rec.artefacts["engine"].info.get("builder", "tensorrt")
        feeds = self.calib.feeds(stage, self.reference)
        self.progress(f"{stage}: engine ({builder})")
        selection = Selection(Backend.TENSORRT, S.Precision(rec.precision))
        runner = make_runner(selection, stage, EngineDir(self.out))
        try:
            with runner:
                out = collect(runner.run, feeds, S.spec(stage).output_names[0])
        except TrtInpaintError as e:  # the runner maps TensorRT's and CUDA's failures to ours
            return None, str(e)
        return CheckRow(
            rec.stage,
            rec.precision,
            f"engine ({builder}) vs fp32 ONNX (ORT)",
            compare(ref, out, hole_masks(feeds)),
        ), None

    def rows(self, no_gpu: str | None) -> tuple[list[CheckRow], int]:
        """Per stage: the engine row where it can run, else the reason and the CPU rows; and how many
        engines were compared. ``no_gpu``: why there is no GPU (None: there is one)."""
        rows: list[CheckRow] = []
        engines = 0
        records = _ordered(self.manifest.stages)
        for rec in records:
            problem = engine_problem(self.out, rec, no_gpu)
            row = None
            if problem is None:
                row, problem = self.engine_row(rec)
            if row is not None:
                rows.append(row)
                engines += 1
                continue
            rows.append(CheckRow(rec.stage, rec.precision, f"engine not compared: {problem}", None))
            rows += self.cpu_stage_rows(rec)
        if engines == 0:
            rows += self.ensemble_row(records)
        return rows, engines


def run_check(
    out_dir: Path,
    calibration: CalibrationOptions | None = None,
    progress: Callable[[str], None] | None = None,
    use_gpu: bool | None = None,
) -> tuple[list[CheckRow], str]:
    """The rows of the check table and a note on what was compared. ``use_gpu``: None, compare engines
    where a GPU is found; True, try them (each stage says why not where it cannot); False, CPU only."""
    checker = Checker(out_dir, calibration or CalibrationOptions(), progress)
    if use_gpu is False:
        return checker.cpu_rows(), "CPU check only: " + CPU_CAVEAT
    no_gpu = gpu_problem() if use_gpu is None else None
    rows, engines = checker.rows(no_gpu)
    if engines:
        return (
            rows,
            "engines on this GPU vs fp32 ONNX in ONNX Runtime; other stages (reason in the row): "
            + CPU_CAVEAT,
        )
    if no_gpu:
        return rows, "no GPU here: " + CPU_CAVEAT
    return rows, "no engine compared (reason in each row): " + CPU_CAVEAT


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
