"""inpaint-bench: every backend side by side, per stage and end to end, against this machine's limit.

    inpaint-bench --engines engines/ --out benchmarks/reports/NAME [--quick]

Writes report.json, report.md and report.png into --out and prints the main table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from trt_inpaint.bench.backends import BY_KEY, DEFAULT_KEYS, TABLE, lookup, unavailable_reason
from trt_inpaint.bench.config import QUICK_SCALING_BACKENDS, QUICK_SIZES, BenchConfig
from trt_inpaint.bench.worker import PROGRESS_PREFIX, Job
from trt_inpaint.errors import EngineError, InputError, TrtInpaintError
from trt_inpaint.export.manifest import read_manifest
from trt_inpaint.export.spec import PIPELINES, Pipeline, Stage, onnx_filename, spec
from trt_inpaint.export.spec import Precision as P
from trt_inpaint.runtime.backends.base import Backend


def _ints(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "none":
        return ()
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers: {text!r}")
    return vals


def _budgets(text: str) -> tuple[str, ...]:
    """Budget names or sizes; "none" skips the budget measurement."""
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    return () if names == ("none",) else names


def _keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    try:
        lookup(keys)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return keys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint-bench",
        description="Latency, throughput, memory and share of the machine's peak, per stage and end to end, "
        "for every backend side by side. Unavailable backends are listed with the reason.",
    )
    p.add_argument("--engines", type=Path, default=Path("engines"), help="folder written by export-engines")
    p.add_argument("--out", type=Path, default=None, help="report folder (default benchmarks/reports/local)")
    p.add_argument("--backends", type=_keys, default=DEFAULT_KEYS, help=f"comma list of {', '.join(BY_KEY)}")
    p.add_argument("--pipeline", choices=[x.value for x in Pipeline], default="ensemble")
    p.add_argument("--size", type=int, default=512, help="working size for per-stage and end-to-end rows")
    p.add_argument(
        "--sizes", type=_ints, default=None, help="LaMa-alone sizes (default 256,512,1024,2048; none: skip)"
    )
    p.add_argument("--scaling-backends", type=_keys, default=None)
    p.add_argument("--batch", type=_ints, default=None, help="batch sizes for throughput (default 1,4)")
    p.add_argument("--batch-backends", type=_keys, default=None)
    p.add_argument(
        "--budgets",
        default=None,
        help="memory budgets for the swap test: all, half, tight or sizes like 3GiB (comma list; none: skip)",
    )
    p.add_argument("--budget-backend", default="ort-cpu-fp32", choices=list(BY_KEY))
    p.add_argument("--budget-images", type=int, default=None)
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed runs after warm-up (default 5, quick 0: the first run is the only sample)",
    )
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed runs after the first run (default 1, quick 0)"
    )
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument(
        "--peak-n", type=int, default=2048, help="side of the square fp32 and bf16 matmuls for the peaks"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="first runs only (no repeats); LaMa alone at 256 and 512 on the first ONNX Runtime / TensorRT "
        "row only; batch 1; 1 image per budget",
    )
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--name", default=None, help="report title (default: the --out folder name)")
    p.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="DIR",
        help="measure nothing: rewrite DIR/report.md and report.png from DIR/report.json",
    )
    p.add_argument("--analysis", type=Path, default=None, help="Markdown file: the Analysis section")
    return p


def config_from_args(a: argparse.Namespace) -> BenchConfig:
    q = a.quick
    out = a.out or Path("benchmarks/reports/local")
    cfg = BenchConfig(
        engines=a.engines,
        out=out,
        backends=a.backends,
        pipeline=Pipeline(a.pipeline),
        size=a.size,
        sizes=a.sizes if a.sizes is not None else (QUICK_SIZES if q else BenchConfig.sizes),
        batches=a.batch or ((1,) if q else BenchConfig.batches),
        budgets=_budgets(a.budgets) if a.budgets else BenchConfig.budgets,
        budget_backend=a.budget_backend,
        budget_images=a.budget_images or (1 if q else 2),
        warmup=a.warmup if a.warmup is not None else (0 if q else 1),
        runs=a.runs if a.runs is not None else (0 if q else 5),
        threads=a.threads or os.cpu_count(),
        quick=q,
        plot=not a.no_plot,
        name=a.name or out.name,
        peak_n=a.peak_n,
    )
    if a.scaling_backends is not None:
        cfg.scaling_backends = a.scaling_backends
    elif q:
        cfg.scaling_backends = QUICK_SCALING_BACKENDS
    if a.batch_backends is not None:
        cfg.batch_backends = a.batch_backends
    if cfg.runs < 0 or cfg.warmup < 0 or cfg.budget_images < 1:
        raise InputError(
            "--runs and --warmup must be >= 0 (--runs 0: the first run is the only sample), "
            "--budget-images >= 1"
        )
    for stage in _pipeline_stages(cfg):
        try:
            spec(stage).check_size(cfg.size, cfg.size)
        except ValueError as e:
            raise InputError(f"--size {cfg.size}: {e}") from None
    return cfg


def _pipeline_stages(cfg: BenchConfig) -> tuple[Stage, ...]:
    return tuple(c.stage for c in PIPELINES[cfg.pipeline])


def check_engines(cfg: BenchConfig) -> None:
    """One-line error with the export command when the fp32 ONNX files the benchmark reads are missing."""
    stages = set(_pipeline_stages(cfg)) | {Stage(cfg.scaling_stage)}
    missing = [
        onnx_filename(s, P.FP32)
        for s in sorted(stages)
        if not (cfg.engines / onnx_filename(s, P.FP32)).is_file()
    ]
    if missing:
        raise EngineError(
            f"engines folder {cfg.engines} lacks {', '.join(missing)}: build them with "
            f"export-engines --out {cfg.engines} (add --random-init for random weights)"
        )


def count_flops(cfg: BenchConfig, progress) -> dict:
    from trt_inpaint.bench.flops import count_file_sizes

    wanted: dict[Stage, set[int]] = {s: {cfg.size} for s in _pipeline_stages(cfg)}
    sc = Stage(cfg.scaling_stage)
    wanted.setdefault(sc, set()).update(x for x in cfg.sizes if spec(sc).fixed_size in (None, x))
    out: dict[str, dict[str, dict]] = {}
    for stage, size_set in wanted.items():
        sizes = sorted(size_set)
        progress(f"FLOPs {stage.value} at {', '.join(map(str, sizes))}")
        shape_sets = [{t.name: t.concrete(1, x, x) for t in spec(stage).inputs} for x in sizes]
        try:
            counts = count_file_sizes(cfg.engines / onnx_filename(stage, P.FP32), shape_sets)
            entries = [{**fc.to_dict(), "complete": fc.complete} for fc in counts]
        except Exception as e:  # a graph we cannot count is reported, never fatal
            bad = {"total": 0.0, "by_op": {}, "complete": False, "unknown_count": -1, "error": str(e)[:300]}
            entries = [bad] * len(sizes)
        out[stage.value] = {str(x): e for x, e in zip(sizes, entries, strict=True)}
    return out


def job_for(cfg: BenchConfig, key: str) -> Job:
    return Job(
        backend=key,
        engines=str(cfg.engines),
        pipeline=cfg.pipeline.value,
        size=cfg.size,
        batches=list(cfg.batches) if key in cfg.batch_backends else [1],
        warmup=cfg.warmup,
        runs=cfg.runs,
        scaling_stage=cfg.scaling_stage,
        scaling_sizes=list(cfg.sizes) if key in cfg.scaling_backends else [],
        budgets=list(cfg.budgets) if key == cfg.budget_backend else [],
        budget_images=cfg.budget_images,
        threads=cfg.threads,
        interval=cfg.interval,
        quick=cfg.quick,
        cache_loads=BY_KEY[key].backend is Backend.OPENVINO and not cfg.quick,
    )


def run_worker(job: Job, progress) -> dict:
    """Run ``job`` in a fresh Python process; progress lines go to ``progress``; keep the stderr tail."""
    with tempfile.TemporaryDirectory(prefix="inpaint-bench-") as tmp:
        jp, op = Path(tmp) / "job.json", Path(tmp) / "out.json"
        jp.write_text(json.dumps(job.to_dict()))
        proc = subprocess.Popen(
            [sys.executable, "-m", "trt_inpaint.bench.worker", str(jp), str(op)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        tail: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith(PROGRESS_PREFIX):
                progress(line[len(PROGRESS_PREFIX) :].strip())
            else:
                tail = (tail + [line.rstrip()])[-20:]
        rc = proc.wait()
        if op.is_file():
            return json.loads(op.read_text())
        last = next((t for t in reversed(tail) if t.strip()), f"exit status {rc}")
        return {"backend": job.backend, "error": f"worker died (exit status {rc}): {last[:300]}"}


def _best_peak(start, end) -> dict:
    """Per precision, the better of the measurements at the start and the end of the run."""
    best = max((start, end), key=lambda p: p.flops).to_dict()
    bf16 = max((start, end), key=lambda p: p.bf16_flops or 0.0).to_dict()
    for k in ("bf16_flops", "openvino_bf16_flops", "torch_bf16_flops", "bf16_note"):
        best[k] = bf16[k]
    best["start_flops"], best["end_flops"] = start.flops, end.flops
    best["start_bf16_flops"], best["end_bf16_flops"] = start.bf16_flops, end.bf16_flops
    return best


def _failure(what: str, e: Exception) -> str:
    return f"{what}: {type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _bench_row(b, cfg: BenchConfig, stages: tuple[Stage, ...], progress, describe) -> dict:
    """One row: available or not (and why), and its measurements, or the reason it failed. Nothing a row
    does stops the others: a check or a worker that raises becomes this row's error."""
    entry = {
        "key": b.key,
        "label": b.label,
        "numeric": b.numeric.value,
        "device": b.device,
        "backend": b.backend.value,
        "available": False,
        "reason": None,
        "note": b.note,
    }
    try:
        reason = unavailable_reason(b, cfg.engines, stages)
    except Exception as e:  # a backend whose own check fails (a broken install): the row says so
        entry.update(available=True, result={"backend": b.key, "error": _failure("availability check", e)})
        return entry
    entry.update(available=reason is None, reason=reason)
    job = job_for(cfg, b.key)
    if reason is not None and job.scaling_sizes:  # the pipeline cannot run; the scaling stage alone may
        try:
            scaling_ok = unavailable_reason(b, cfg.engines, (Stage(cfg.scaling_stage),)) is None
        except Exception:
            scaling_ok = False
        if scaling_ok:
            job.batches, job.budgets = [], []
            entry["partial"] = f"{cfg.scaling_stage} scaling only"
        else:
            job = None
    if reason is None or (job is not None and entry.get("partial")):
        describe(f"inpaint-bench {b.key}")
        try:
            entry["result"] = run_worker(job, progress)
        except Exception as e:  # the worker could not be started or its output not read
            entry["result"] = {"backend": b.key, "error": _failure("worker", e)}
    return entry


def run_bench(cfg: BenchConfig, analysis: Path | None = None) -> dict:
    """Every measurement; returns the report dict (also written to cfg.out)."""
    from tqdm import tqdm

    from trt_inpaint.bench.machine import machine_info
    from trt_inpaint.bench.peak import measure_peak
    from trt_inpaint.bench.report import bf16_headlines, headline_ratio, write_report

    check_engines(cfg)
    manifest = read_manifest(cfg.engines)  # a damaged one stops here, before any measurement
    rows = [b for b in TABLE if b.key in cfg.backends]
    stages = _pipeline_stages(cfg)
    bar = tqdm(total=2 + len(rows), desc="inpaint-bench", unit="step", file=sys.stderr, dynamic_ncols=True)

    def progress(msg: str) -> None:
        bar.set_postfix_str(msg[:60], refresh=True)

    machine = machine_info()
    load_start = machine["load_average"]
    progress("fp32 and bf16 matmul peaks")  # measured again at the end: the larger is the reference
    peak = measure_peak(n=cfg.peak_n, threads=cfg.threads)
    bar.update(1)
    flops = count_flops(cfg, progress)
    bar.update(1)
    backends = []
    for b in rows:
        backends.append(_bench_row(b, cfg, stages, progress, bar.set_description))
        bar.update(1)
    bar.close()
    report = {
        "name": cfg.name,
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "inpaint-bench " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "config": cfg.to_dict(),
        "machine": machine,
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "peak": _best_peak(peak, measure_peak(n=cfg.peak_n, threads=cfg.threads)),
        "flops": flops,
        "random_init": None if manifest is None else manifest.uses_random_init,
        "backends": backends,
    }
    report["headline"] = headline_ratio(report)
    report["bf16_headlines"] = bf16_headlines(report)
    if analysis is not None:
        report["analysis"] = analysis.read_text()
    write_report(report, cfg.out, plot=cfg.plot)
    return report


def render(folder: Path, analysis: Path | None, plot: bool) -> int:
    """Rewrite a report's Markdown and plot from its JSON (after adding an analysis, or a format change)."""
    from trt_inpaint.bench.report import write_report

    try:
        report = json.loads((folder / "report.json").read_text())
        if analysis is not None:
            report["analysis"] = analysis.read_text()
    except (OSError, ValueError) as e:
        print(f"inpaint-bench: error: {InputError(f'cannot read the report ({e})', folder)}", file=sys.stderr)
        return InputError.exit_code
    write_report(report, folder, plot=plot)
    print(f"report: {folder / 'report.md'}")
    return 0


QUICK_CAVEAT = "; quick run: first runs only, judge the goal on a full run"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.render is not None:
        return render(args.render, args.analysis, not args.no_plot)
    try:
        cfg = config_from_args(args)
        report = run_bench(cfg, args.analysis)
    except TrtInpaintError as e:
        print(f"inpaint-bench: error: {e}", file=sys.stderr)
        return e.exit_code
    from trt_inpaint.bench.report import main_table

    print(main_table(report))
    for h in filter(None, [report.get("headline"), *report.get("bf16_headlines", [])]):
        print(
            f"\n{h['test']} vs {h['base']} end to end: {h['speedup']:.2f}x "
            f"(goal {h['goal']}x{QUICK_CAVEAT if cfg.quick else ''})"
        )
    print(f"\nreport: {cfg.out / 'report.md'}")
    failed = [b["key"] for b in report["backends"] if "error" in (b.get("result") or {})]
    if failed:
        print(f"inpaint-bench: failed backends: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
