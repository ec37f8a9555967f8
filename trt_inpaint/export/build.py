"""Orchestrates the export per stage: fp32 ONNX -> mixed fp16 ONNX -> engine -> manifest, reusing every
artefact whose inputs and options are unchanged (and whose file still matches its recorded sha256)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from trt_inpaint.errors import CheckpointError, InputError
from trt_inpaint.export import spec as S
from trt_inpaint.export.calibration import CalibrationOptions, CalibrationSet
from trt_inpaint.export.engine import (
    DEFAULT_RTX_TARGETS,
    Builder,
    EngineBuild,
    RtxTarget,
    RtxTargets,
    build_engine,
    resolve,
)
from trt_inpaint.export.fp16 import Fp16Options
from trt_inpaint.export.manifest import Artefact, Manifest, StageRecord, key_of, read_manifest, sha256_file
from trt_inpaint.export.manifest import write_manifest as _write

TOOL_VERSION = "trt-inpaint export 1"
ALL_STAGES = tuple(S.Stage)


@dataclass(frozen=True)
class ExportOptions:
    out_dir: Path
    weights: dict[S.Stage, Path] = field(default_factory=dict)  # stage -> checkpoint
    precision: S.Precision = S.Precision.FP16
    builder: Builder = Builder.AUTO
    rtx_targets: RtxTargets = DEFAULT_RTX_TARGETS  # TensorRT-RTX architectures (full TensorRT ignores it)
    max_size: int | None = None  # engine profile's largest side (None: the spec's)
    min_size: int | None = None  # engine profile's smallest side (None: the spec's)
    max_batch: int | None = None  # engine profile's largest batch (None: the spec's)
    random_init: bool = False  # stages without weights get seeded random weights
    seed: int = 0
    stages: tuple[S.Stage, ...] = ALL_STAGES
    calibration: CalibrationOptions = CalibrationOptions()
    fp16: Fp16Options = Fp16Options()
    tiny: bool = False  # reduced models (tests only; implies random weights)


@dataclass
class StageReport:
    stage: S.Stage
    status: str  # "reused" or "built (...)"
    seconds: float
    record: StageRecord


Progress = Callable[[str], None]


def source_of(stage: S.Stage, opts: ExportOptions) -> dict:
    """Where a stage's weights come from; raises InputError/CheckpointError naming the flag if nowhere."""
    path = opts.weights.get(stage)
    if path is not None and not opts.tiny:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError("checkpoint file not found", path)
        return {"path": str(path.resolve()), "sha256": sha256_file(path), "random_init": False}
    if opts.random_init or opts.tiny:
        return {"random_init": True, "seed": opts.seed, "tiny": opts.tiny}
    raise InputError(
        f"no weights for stage {stage}: pass {S.spec(stage).weights_flag} FILE, or --random-init for seeded "
        "random weights (smoke tests and benchmarks only)"
    )


def load_stage_module(stage: S.Stage, source: dict, opts: ExportOptions):
    """The stage wrapper (spec-ordered inputs) around the model, with the factored matrix-product FFT (no DFT
    op; any H and W in one graph)."""
    from trt_inpaint.models import stages
    from trt_inpaint.models.ffc import set_fft
    from trt_inpaint.models.fft import FFTImpl

    if source["random_init"]:
        model = stages.random_stage_model(stage, seed=opts.seed, tiny=opts.tiny)
    else:
        model = stages.load_stage_model(stage, source["path"])
    set_fft(model, FFTImpl.FACTORED)
    return stages.build_stage(stage, model).eval()


def onnx_input_dims(path: Path) -> dict[str, list[int | str]]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {
        i.name: [
            d.dim_value if d.HasField("dim_value") else d.dim_param for d in i.type.tensor_type.shape.dim
        ]
        for i in m.graph.input
    }


def engine_profile(
    stage: S.Stage,
    dims: dict[str, list[int | str]],
    max_size: int | None = None,
    min_size: int | None = None,
    max_batch: int | None = None,
) -> dict:
    """The spec's min/opt/max shapes (with the given overrides), with the ONNX's static dims where the graph
    fixes them. The optimum stays the spec's (512x512, batch 1)."""
    spec = S.spec(stage)
    if min_size is not None or max_batch is not None:
        spec = dataclasses.replace(
            spec,
            min_size=min(min_size or spec.min_size, spec.opt_size),
            max_batch=max_batch or spec.max_batch,
        )
    prof = spec.profile(max_size)
    out = {}
    for name, shapes in prof.items():
        fixed = dims.get(name) or [None] * len(shapes[0])
        out[name] = tuple(
            tuple(f if isinstance(f, int) and f > 0 else v for v, f in zip(shape, fixed, strict=True))
            for shape in shapes
        )
    return out


class Exporter:
    """Runs the export for the stages in ``opts.stages``; ``run()`` returns one report per stage."""

    def __init__(
        self,
        opts: ExportOptions,
        progress: Progress | None = None,
        on_stage: Callable[[StageReport], None] | None = None,
    ):
        self.opts = opts
        self.on_stage = on_stage or (lambda report: None)
        self.out = Path(opts.out_dir)
        self.progress = progress or (lambda msg: None)
        self._calib: CalibrationSet | None = None
        self._fp32_outputs: dict[S.Stage, list[np.ndarray]] = {}
        self._fp32_sha: dict[S.Stage, str] = {}  # sha256 of each stage's fp32 ONNX, once known this run
        self.builder = resolve(opts.builder)

    @property
    def calib(self) -> CalibrationSet:
        if self._calib is None:
            self._calib = CalibrationSet(self.opts.calibration)
        return self._calib

    def run(self) -> tuple[Manifest, list[StageReport]]:
        self.out.mkdir(parents=True, exist_ok=True)
        manifest = read_manifest(self.out) or Manifest()
        if self.opts.precision is S.Precision.FP16:
            _ = self.calib  # a bad --calibration folder fails first, before any model is built
        sources = {s: source_of(s, self.opts) for s in self.opts.stages}  # fail early, before any work
        reports = []
        # upstream stages first, whatever the order asked: a stage's fp16 key holds its upstream fp32 files
        for stage in [s for s in S.pipeline_stages(S.Pipeline.ENSEMBLE) if s in set(self.opts.stages)]:
            old = manifest.stages.get(stage.value)
            report = self.stage(stage, sources[stage], old)
            manifest.stages[stage.value] = report.record
            manifest.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            _write(self.out, manifest)  # after every stage: an interrupted run keeps what is done
            reports.append(report)
            self.on_stage(report)
        return manifest, reports

    # ---- one stage ----------------------------------------------------------------------------------

    def stage(self, stage: S.Stage, source: dict, old: StageRecord | None) -> StageReport:
        t0 = time.perf_counter()
        opts = self.opts
        arts = dict(old.artefacts) if old else {}
        built: list[str] = []
        module = None

        # 1. fp32 ONNX
        path32 = self.out / S.onnx_filename(stage, S.Precision.FP32)
        weights_id = {k: v for k, v in source.items() if k != "path"}  # moving the file is no change
        key32 = key_of({"source": weights_id, "tool": TOOL_VERSION, "opset": 17})
        a = arts.get("onnx_fp32")
        if not (a and a.is_current(self.out, key32)):
            from trt_inpaint.export.onnx import export_onnx

            self.progress(f"{stage}: loading weights")
            t = time.perf_counter()
            module = load_stage_module(stage, source, opts)
            self.progress(f"{stage}: exporting fp32 ONNX")
            export_onnx(module, stage, path32)
            arts["onnx_fp32"] = Artefact.of(path32, key32, time.perf_counter() - t, {"opset": 17})
            built.append("onnx_fp32")
            self._fp32_outputs.pop(stage, None)
        del module
        self._fp32_sha[stage] = arts["onnx_fp32"].sha256  # checked or written just now
        dims = onnx_input_dims(path32)

        # 2. mixed fp16 ONNX
        runtime_key = "onnx_fp32"
        if opts.precision is S.Precision.FP16:
            path16 = self.out / S.onnx_filename(stage, S.Precision.FP16)
            key16 = key_of(
                {
                    "fp32": arts["onnx_fp32"].sha256,
                    "calibration": self.calib.digest(),
                    "upstream": self._upstream_ids(stage),
                    "calibration_options": {k: str(v) for k, v in vars(opts.calibration).items()},
                    "fp16": opts.fp16.key(),
                    "tool": TOOL_VERSION,
                }
            )
            a = arts.get("onnx_fp16")
            if not (a and a.is_current(self.out, key16)):
                arts["onnx_fp16"] = self._make_fp16(stage, path32, path16, key16, dims)
                built.append("onnx_fp16")
            runtime_key = "onnx_fp16"
        else:
            arts.pop("onnx_fp16", None)

        # 3. engine
        profile = engine_profile(stage, dims, opts.max_size, opts.min_size, opts.max_batch)
        if self.builder is not Builder.NONE:
            from trt_inpaint.export.engine import load_module

            version = str(load_module(self.builder).__version__)
            engine_id = {
                "onnx": arts[runtime_key].sha256,
                "builder": self.builder.value,
                "version": version,
                "profile": profile,
            }
            if self.builder is Builder.TENSORRT_RTX:
                engine_id["rtx_targets"] = [RtxTarget(t).value for t in opts.rtx_targets]
            key_e = key_of(engine_id)
            a = arts.get("engine")
            if not (a and a.is_current(self.out, key_e)):
                path_e = self.out / S.engine_filename(stage, opts.precision)
                self.progress(f"{stage}: building engine ({self.builder}, profile {profile_text(profile)})")
                eb: EngineBuild = build_engine(
                    self.out / arts[runtime_key].file,
                    path_e,
                    profile,
                    self.builder,
                    self.out / "timing.cache",
                    opts.rtx_targets,
                )
                arts["engine"] = Artefact.of(path_e, key_e, eb.seconds, _engine_info(eb))
                built.append("engine")
        else:
            arts.pop("engine", None)

        spec = S.spec(stage)
        record = StageRecord(
            stage=stage.value,
            precision=opts.precision.value,
            source=source,
            random_init=bool(source.get("random_init")),
            inputs=[{"name": t.name, "shape": list(dims[t.name]), "dtype": t.dtype} for t in spec.inputs],
            outputs=[{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in spec.outputs],
            profile={k: [list(s) for s in v] for k, v in profile.items()},
            artefacts=arts,
            status=f"built ({', '.join(built)})" if built else "reused",
        )
        return StageReport(stage, record.status, round(time.perf_counter() - t0, 2), record)

    def _make_fp16(self, stage: S.Stage, path32: Path, path16: Path, key: str, dims: dict) -> Artefact:
        import onnx

        from trt_inpaint.export.fp16 import make_fp16
        from trt_inpaint.export.onnx import check_onnx, save_model

        t = time.perf_counter()
        self.progress(f"{stage}: calibration feeds ({len(self.calib)} images)")
        feeds = self.calib.feeds(stage, self._upstream)
        model16, result = make_fp16(
            onnx.load(str(path32)), feeds, self.opts.fp16, lambda m: self.progress(f"{stage}: {m}")
        )
        self._fp32_outputs[stage] = result.reference
        save_model(model16, path16)
        check_onnx(path16, stage)
        if not result.passed:
            self.progress(
                f"WARNING {stage}: fp16 verification failed after {result.rounds} rounds "
                f"(PSNR {result.comparison.psnr_db:.1f} dB, {result.comparison.nonfinite} non-finite)"
            )
        return Artefact.of(path16, key, time.perf_counter() - t, result.to_dict())

    def _upstream_ids(self, stage: S.Stage) -> dict[str, str | None]:
        """sha256 of the fp32 ONNX of every stage upstream of ``stage`` (None: absent, its photo stands in):
        their outputs are ``stage``'s calibration feeds, so new upstream weights make its fp16 stale. Stages
        of this run come first (pipeline order) with their sha256 known; others' files are hashed once."""
        ids: dict[str, str | None] = {}
        for s in S.upstream_stages(stage):
            path = self.out / S.onnx_filename(s, S.Precision.FP32)
            if s not in self._fp32_sha and path.is_file():
                self._fp32_sha[s] = sha256_file(path)
            ids[s.value] = self._fp32_sha.get(s)
        return ids

    def _upstream(self, stage: S.Stage) -> list[np.ndarray] | None:
        """fp32 ONNX outputs of ``stage`` on the calibration set (for the stages it feeds)."""
        if stage not in self._fp32_outputs:
            path = self.out / S.onnx_filename(stage, S.Precision.FP32)
            if not path.is_file():
                return None
            from trt_inpaint.export.segmented import run_onnx

            self.progress(f"{stage}: fp32 outputs for downstream calibration")
            feeds = self.calib.feeds(stage, self._upstream)
            self._fp32_outputs[stage] = run_onnx(path, feeds)
        return self._fp32_outputs[stage]


def _engine_info(eb: EngineBuild) -> dict:
    return {
        "builder": eb.builder,
        "version": eb.version,
        "target": eb.target,
        "timing_cache": eb.timing_cache or "not used (TensorRT-RTX: timing-cache calls are no-ops)",
        "strongly_typed": True,
    }


def profile_text(profile: dict) -> str:
    first = next(iter(profile.values()))
    return " / ".join("x".join(map(str, s)) for s in first)


def export(opts: ExportOptions, progress: Progress | None = None) -> tuple[Manifest, list[StageReport]]:
    return Exporter(opts, progress).run()
