"""``export-engines``: fp32 ONNX, mixed fp16 ONNX and TensorRT(-RTX) engines per stage, and manifest.json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from trt_inpaint.errors import InputError, TrtInpaintError
from trt_inpaint.export import spec as S
from trt_inpaint.export.calibration import CalibrationOptions
from trt_inpaint.export.engine import DEFAULT_RTX_TARGETS, Builder, RtxTarget, parse_rtx_targets, rtx_note

BANNER = "!" * 100


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="export-engines",
        description="Export every stage to fp32 ONNX, mixed fp16 ONNX (fp32 islands chosen by measurement) "
        "and a TensorRT or TensorRT-RTX engine, with a manifest.json. Re-running reuses what is up to date.",
    )
    w = p.add_argument_group("weights (each stage needs its file unless --random-init)")
    for row in S.STAGES.values():
        w.add_argument(
            row.weights_flag, dest=row.name, type=Path, metavar=row.weights_metavar, help=row.weights
        )
    w.add_argument(
        "--random-init",
        action="store_true",
        help="stages without a weights file get seeded random weights (smoke tests, benchmarks; said loudly)",
    )
    w.add_argument(
        "--seed", type=int, default=0, help="seed of --random-init weights and MAT's noise (default 0)"
    )
    p.add_argument("--out", type=Path, default=Path("engines"), help="output folder (default engines/)")
    p.add_argument("--precision", choices=[x.value for x in S.FILE_PRECISIONS], default="fp16")
    p.add_argument("--builder", choices=[b.value for b in Builder], default="auto",
                   help="auto: tensorrt if it imports, else tensorrt-rtx, else none (ONNX only)")  # fmt: skip
    p.add_argument(
        "--rtx-targets",
        type=_rtx_targets,
        metavar="SM[,SM...]",
        help=f"GPU architectures of TensorRT-RTX engines, of {', '.join(t.value for t in RtxTarget)} "
        f"(default {','.join(t.value for t in DEFAULT_RTX_TARGETS)}: Ampere, Ada, Blackwell). Turing (sm75) "
        "makes engines about 16x larger (MAT fp16: 2.7 GB instead of 172 MB, measured) and slower to build: "
        "build it into its own --out folder. Ignored by --builder tensorrt (it builds for its own GPU)",
    )
    e = p.add_argument_group("engine optimization profile (the optimum is always 512x512, batch 1)")
    e.add_argument("--max-size", type=int, metavar="N", help="largest image side (default 2048)")
    e.add_argument("--min-size", type=int, metavar="N", help="smallest image side (default 64)")
    e.add_argument("--max-batch", type=int, metavar="B", help="largest batch (default 4)")
    p.add_argument(
        "--stages", nargs="+", choices=[s.value for s in S.Stage], metavar="STAGE",
        help=f"stages to export (default all: {' '.join(s.value for s in S.Stage)})",
    )  # fmt: skip
    c = p.add_argument_group("fp16 calibration")
    c.add_argument(
        "--calibration", type=Path, metavar="DIR",
        help="more image/mask pairs: DIR/images + DIR/masks by name, or NAME.png + NAME_mask.png",
    )  # fmt: skip
    c.add_argument(
        "--calibration-size", type=int, default=512, metavar="N", help="side of calibration images"
    )
    c.add_argument("--calibration-images", type=int, metavar="K", help="use only the first K pairs")
    p.add_argument(
        "--check",
        action="store_true",
        help="after export, compare engines (GPU) or the fp16 ONNX (CPU) with the fp32 ONNX and print a "
        "table; with no weights and no --random-init, check the existing folder only",
    )
    return p


def _rtx_targets(text: str) -> tuple[RtxTarget, ...]:
    try:
        return parse_rtx_targets(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _weights(args: argparse.Namespace) -> dict[S.Stage, Path]:
    """Stage -> the weights file its flag named (each flag's destination is the stage name)."""
    return {s: getattr(args, s.value) for s in S.STAGES if getattr(args, s.value) is not None}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    calibration = CalibrationOptions(
        size=args.calibration_size,
        max_images=args.calibration_images,
        directory=args.calibration,
        seed=args.seed,
    )
    try:
        if args.calibration_size % 8 or args.calibration_size < 64:
            raise InputError(f"--calibration-size {args.calibration_size}: use a multiple of 8, at least 64")
        weights = _weights(args)
        if args.check and not weights and not args.random_init:
            return _check(args.out, calibration)
        code = _export(args, weights, calibration)
        if code == 0 and args.check:
            code = _check(args.out, calibration)
        return code
    except TrtInpaintError as e:
        print(f"export-engines: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("export-engines: interrupted (finished stages are kept in the manifest)", file=sys.stderr)
        return 130


def _export(args: argparse.Namespace, weights: dict[S.Stage, Path], calibration: CalibrationOptions) -> int:
    from tqdm import tqdm

    from trt_inpaint.export.build import Exporter, ExportOptions

    stages = tuple(S.Stage(s) for s in args.stages) if args.stages else tuple(S.Stage)
    opts = ExportOptions(
        out_dir=args.out,
        weights=weights,
        precision=S.Precision(args.precision),
        builder=Builder(args.builder),
        rtx_targets=args.rtx_targets or DEFAULT_RTX_TARGETS,
        max_size=args.max_size,
        min_size=args.min_size,
        max_batch=args.max_batch,
        random_init=args.random_init,
        seed=args.seed,
        stages=stages,
        calibration=calibration,
    )
    random_stages = [s.value for s in stages if s not in weights]
    if args.random_init and random_stages:
        print(
            f"{BANNER}\nWARNING: --random-init: stages {', '.join(random_stages)} are built from SEEDED "
            f"RANDOM WEIGHTS (seed {args.seed}).\nTheir output is noise: smoke tests and benchmarks only. "
            f"The manifest says so.\n{BANNER}",
            file=sys.stderr,
        )
    bar = tqdm(total=len(stages), unit="stage", file=sys.stderr, dynamic_ncols=True, disable=None)  # tty only

    def done(report) -> None:
        tqdm.write(f"{report.stage.value:15s} {report.status} ({report.seconds:.1f} s)")
        bar.update(1)

    def progress(msg: str) -> None:
        if bar.disable:  # not a terminal (CI log): one line per step
            print(f"  {msg}", file=sys.stderr, flush=True)
        else:
            bar.set_description(msg[:70])

    exporter = Exporter(opts, progress=progress, on_stage=done)
    if exporter.builder is Builder.NONE:
        why = (
            "--builder none" if opts.builder is Builder.NONE else "neither tensorrt nor tensorrt_rtx imports"
        )
        tqdm.write(
            f"WARNING: no engine builder ({why}): writing ONNX files only, no engines", file=sys.stderr
        )
    elif exporter.builder is Builder.TENSORRT_RTX:
        tqdm.write(f"note: {rtx_note(opts.rtx_targets)}", file=sys.stderr)
    if args.rtx_targets and exporter.builder is not Builder.TENSORRT_RTX:
        tqdm.write(f"WARNING: --rtx-targets is ignored by builder {exporter.builder}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        manifest, _ = exporter.run()
    finally:
        bar.close()
    print(f"wrote {Path(args.out) / S.MANIFEST_NAME} ({time.perf_counter() - t0:.1f} s)")
    failed = [
        s
        for s, r in manifest.stages.items()
        if "onnx_fp16" in r.artefacts
        and not r.artefacts["onnx_fp16"].info.get("verification", {}).get("passed", True)
    ]
    if failed:
        print(
            f"WARNING: fp16 verification below target for {', '.join(failed)} (see manifest)", file=sys.stderr
        )
    if manifest.uses_random_init:
        print("WARNING: this folder holds RANDOM-WEIGHT stages (manifest random_init: true)", file=sys.stderr)
    return 0


def _check(out_dir: Path, calibration: CalibrationOptions) -> int:
    from trt_inpaint.export.check import format_table, run_check

    rows, note = run_check(out_dir, calibration, progress=lambda m: print(f"check: {m}", file=sys.stderr))
    print(format_table(rows, note))
    bad = [r for r in rows if r.comparison is not None and not r.comparison.finite]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
