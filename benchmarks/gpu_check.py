"""Every GPU check of trt-inpaint in one run, each step's status in a summary; driven by gpu-check.sh.

    python3 benchmarks/gpu_check.py --out DIR [--dry-run] [--budget-s 525] [--steps a,b]
    python3 benchmarks/gpu_check.py footprints --engines DIR --backend B --size N --out FILE.json

A failing step is reported loudly and the next one runs; the exit status is 1 when any step failed.
Statuses: ok, FAIL, unavailable (a backend this machine cannot run, as expected: the reason is given),
skipped (no time left, or a prerequisite missing). Everything lands in --out: summary.tsv, log.txt,
details.tar.gz (every step's output) and the benchmark's report.json/.md/.png: at most 8 files.
--dry-run runs the same plumbing on a CPU with the reduced models (no GPU, no carried wheels).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OK, FAIL, UNAVAILABLE, SKIPPED = "ok", "FAIL", "unavailable", "skipped"
BACKEND_UNAVAILABLE = 5  # trt_inpaint.errors.BackendUnavailable.exit_code
# test files whose GPU branches run on a GPU machine (test_ort_cuda's dlopen test needs tensorrt_rtx,
# which a Hopper machine does not get: TensorRT-RTX does not support it)
GPU_TESTS = [
    "tests/runtime/test_cuda_rt.py",
    "tests/runtime/test_gpu_visible.py",
    "tests/runtime/test_ort_cuda.py",
    "tests/bench/test_ort_cuda_label.py",
]
GPU_TESTS_DESELECT = ["tests/runtime/test_ort_cuda.py::test_dlopen_problem_names_the_missing_library"]
MIB = 1 << 20


@dataclass
class Result:
    name: str
    status: str
    seconds: float
    detail: str = ""


@dataclass
class Ctx:
    out: Path
    work: Path
    dry_run: bool
    deadline: float
    log: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    @property
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def engines(self) -> Path:
        return self.work / "engines"


class StepError(Exception):
    """A step's own verdict: ``status`` with a one-line ``detail``."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def run(
    ctx: Ctx, name: str, cmd: list[str], timeout: float, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``cmd`` from the repository root; its output goes to work/NAME.log and the log."""
    timeout = max(5.0, min(timeout, ctx.remaining - 5))
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        proc = subprocess.CompletedProcess(cmd, 124, out, err + f"\n[timed out after {timeout:.0f} s]")
    head = f"$ {' '.join(cmd)}\n[exit {proc.returncode}, {time.monotonic() - t0:.1f} s]"
    text = f"{head}\n{proc.stdout}\n{proc.stderr}"
    (ctx.work / f"{name}.log").write_text(text)
    ctx.log.append(f"==== {name}\n{text[-20000:]}")
    return proc


def last_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return lines[-1][:300] if lines else ""


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


# ---- steps ---------------------------------------------------------------------------------------------


def step_env(ctx: Ctx) -> str:
    """GPU, driver, library versions, which ONNX Runtime is imported and whether CUDA really runs."""
    code = (
        "import json, sys, importlib\n"
        "from trt_inpaint.runtime import gpu\n"
        "from trt_inpaint.runtime.backends import onnxruntime as O\n"
        "info = {'python': sys.version.split()[0], 'gpu_problem': gpu.gpu_problem(),\n"
        "        'gpus': [g.__dict__ | {'migs': len(g.migs)} for g in gpu.nvml_gpus()],\n"
        "        'visible0': gpu.visible(0).__dict__ if gpu.visible(0) else None,\n"
        "        'compute_capability': gpu.compute_capability(0),\n"
        "        'ort_distributions': [[d.name, d.version, str(d.folder)] for d in O.ort_distributions()],\n"
        "        'ort_install_problem': O.install_problem(), 'ort_cuda_problem': O.cuda_problem()}\n"
        "for m in ('torch', 'onnx', 'onnxruntime', 'onnxconverter_common', 'cuda.bindings', 'tensorrt',\n"
        "          'tensorrt_rtx'):\n"
        "    try:\n"
        "        info[m] = getattr(importlib.import_module(m), '__version__', 'yes')\n"
        "    except Exception as e:\n"
        "        info[m] = f'missing ({type(e).__name__})'\n"
        "import onnxruntime as ort; info['ort_providers'] = ort.get_available_providers()\n"
        "print(json.dumps(info, default=str))\n"
    )
    proc = run(ctx, "env", python("-c", code), 120)
    if proc.returncode != 0:
        raise StepError(FAIL, last_line(proc.stderr))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    smi = shutil.which("nvidia-smi")
    if smi:
        q = run(ctx, "nvidia-smi", [smi, "--query-gpu=name,memory.total,driver_version,compute_cap",
                                    "--format=csv,noheader"], 30)  # fmt: skip
        info["nvidia_smi"] = q.stdout.strip()
    ctx.facts.update(info)
    (ctx.work / "env.json").write_text(json.dumps(info, indent=1, default=str))
    ctx.facts["ort_cuda"] = info["ort_cuda_problem"] is None
    expected = os.environ.get("GPU_CHECK_ORT_GPU") == "expected"  # gpu-check.sh installed onnxruntime-gpu
    ctx.facts["ort_cuda_expected"] = expected
    if expected and info["ort_cuda_problem"]:
        raise StepError(
            FAIL, f"onnxruntime-gpu was carried but ort-cuda cannot run: {info['ort_cuda_problem']}"
        )
    if not ctx.dry_run and info["gpu_problem"]:
        raise StepError(FAIL, f"no GPU: {info['gpu_problem']}")
    if info["ort_install_problem"]:
        raise StepError(FAIL, info["ort_install_problem"])
    name = info["gpus"][0]["name"] if info["gpus"] else "no GPU"
    return f"{name}; torch {info['torch']}; onnxruntime {info['onnxruntime']}; ort-cuda: " + (
        "runs" if ctx.facts["ort_cuda"] else str(info["ort_cuda_problem"])[:150]
    )


def step_device_match(ctx: Ctx) -> str:
    """CUDA device 0 as torch sees it is the NVML device trt_inpaint.runtime.gpu picks, for
    CUDA_VISIBLE_DEVICES unset, an index and the GPU's UUID."""
    if ctx.dry_run or not ctx.facts.get("gpus"):
        raise StepError(SKIPPED, "no GPU (dry run)" if ctx.dry_run else "no GPU")
    code = (
        "import torch\nfrom trt_inpaint.runtime import gpu\n"
        "t = str(torch.cuda.get_device_properties(0).uuid).lower().removeprefix('gpu-')\n"
        "v = gpu.visible(0)\n"
        "print('MATCH' if v and v.uuid.lower().endswith(t) else f'MISMATCH torch={t} ours={v}')\n"
    )
    uuid = ctx.facts["visible0"]["uuid"] if ctx.facts.get("visible0") else ""
    seen = []
    for label, value in (("unset", None), ("index", "0"), ("uuid", uuid)):
        env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
        if value is not None:
            env["CUDA_VISIBLE_DEVICES"] = value
        proc = subprocess.run(
            python("-c", code), cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
        )
        ctx.log.append(f"==== device-match {label}\n{proc.stdout}{proc.stderr[-3000:]}")
        seen.append(f"{label}: {last_line(proc.stdout) or last_line(proc.stderr)}")
    if not all(s.endswith("MATCH") and "MISMATCH" not in s for s in seen):
        raise StepError(FAIL, "; ".join(seen))
    return "; ".join(seen)


def step_pytest(ctx: Ctx) -> str:
    """The tests with GPU branches, run on this machine."""
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS]
    args += [f"--deselect={d}" for d in GPU_TESTS_DESELECT]
    proc = run(ctx, "pytest", python(*args), 240)
    summary = last_line(proc.stdout)
    if proc.returncode != 0:
        raise StepError(FAIL, summary or last_line(proc.stderr))
    return summary


TINY_EXPORT = (
    "import sys\nfrom pathlib import Path\n"
    "from trt_inpaint.export.build import Exporter, ExportOptions\n"
    "from trt_inpaint.export.calibration import CalibrationOptions\n"
    "from trt_inpaint.export.engine import Builder\n"
    "opts = ExportOptions(out_dir=Path(sys.argv[1]), tiny=True, builder=Builder.NONE,\n"
    "                     calibration=CalibrationOptions(size=64, max_images=1))\n"
    "manifest, reports = Exporter(opts).run()\nprint([r.status for r in reports])\n"
)
CALIBRATION = ["--calibration-size", "256", "--calibration-images", "2"]


def step_export(ctx: Ctx) -> str:
    """Random-init engines of every stage (full size on the GPU machine; the reduced models in a dry run)."""
    if ctx.dry_run:
        proc = run(ctx, "export", python("-c", TINY_EXPORT, str(ctx.engines)), 300)
    else:
        cmd = python("-m", "trt_inpaint.export.cli", "--random-init", "--out", str(ctx.engines), *CALIBRATION)
        proc = run(ctx, "export", cmd, 300)
    if proc.returncode != 0 or not (ctx.engines / "manifest.json").is_file():
        raise StepError(FAIL, last_line(proc.stderr) or last_line(proc.stdout))
    files = sorted(p.name for p in ctx.engines.iterdir() if p.suffix in (".onnx", ".engine"))
    return f"{len(files)} files: {' '.join(files)}"


def _check(ctx: Ctx, name: str, folder: Path) -> str:
    cal = ["--calibration-size", "64", "--calibration-images", "1"] if ctx.dry_run else CALIBRATION
    proc = run(ctx, name, python("-m", "trt_inpaint.export.cli", "--check", "--out", str(folder), *cal), 240)
    table = proc.stdout
    if proc.returncode != 0 or "PSNR dB" not in table:
        raise StepError(FAIL, last_line(proc.stderr) or last_line(table))
    if "Traceback" in proc.stderr:
        raise StepError(FAIL, "a traceback in the check's output")
    compared = len(re.findall(r"engine \(tensorrt(?:-rtx)?\) vs fp32 ONNX", table))
    fallbacks = re.findall(r"engine not compared: (.+?)(?:\s{2,}|$)", table, re.M)
    return f"{compared} engines compared; {len(fallbacks)} CPU fallbacks" + (
        f" (first: {fallbacks[0][:120]})" if fallbacks else ""
    )


def step_check(ctx: Ctx) -> str:
    """export-engines --check on the engines just exported."""
    if not (ctx.engines / "manifest.json").is_file():
        raise StepError(SKIPPED, "no engines (export failed)")
    return _check(ctx, "check", ctx.engines)


def step_check_rtx(ctx: Ctx) -> str:
    """export-engines --check on the TensorRT-RTX engine built by --prepare (carried in .gpu-check/): on an
    RTX GPU it is compared, on Hopper the table says why not and falls back to the CPU rows."""
    src = ROOT / ".gpu-check" / "rtx-engines"
    if not (src / "manifest.json").is_file():
        raise StepError(SKIPPED, "no .gpu-check/rtx-engines (run gpu-check.sh --prepare first)")
    folder = ctx.work / "rtx-engines"
    shutil.copytree(src, folder, dirs_exist_ok=True)
    return _check(ctx, "check-rtx", folder)


def _infer(ctx: Ctx, backend: str) -> str:
    from trt_inpaint.samples import sample_pairs

    if not (ctx.engines / "manifest.json").is_file():
        raise StepError(SKIPPED, "no engines (export failed)")
    img, mask = sample_pairs()[0]
    out = ctx.work / f"inpainted-{backend}.png"
    cmd = python("-m", "trt_inpaint.runtime.cli", str(img), str(mask), "-o", str(out), "--engines",
                 str(ctx.engines), "--backend", backend, "--json", "--no-footprint-cache")  # fmt: skip
    proc = run(ctx, f"infer-{backend}", cmd, 180)
    full_trt = not str(ctx.facts.get("tensorrt", "missing")).startswith("missing")
    # exit 5: backend unavailable; for tensorrt also 4: TensorRT-RTX engines refused on Hopper
    if proc.returncode == BACKEND_UNAVAILABLE or (backend == "tensorrt" and proc.returncode == 4):
        must_run = {
            "ort-cuda": bool(ctx.facts.get("ort_cuda") or ctx.facts.get("ort_cuda_expected")),
            "torch": not ctx.dry_run,
            "tensorrt": full_trt,
        }.get(backend, True)
        raise StepError(FAIL if must_run else UNAVAILABLE, last_line(proc.stderr))
    if proc.returncode != 0:
        raise StepError(FAIL, last_line(proc.stderr) or f"exit {proc.returncode}")
    summary = json.loads(proc.stdout)
    (ctx.work / f"infer-{backend}.json").write_text(json.dumps(summary, indent=1))
    if summary.get("written") != 1 or not out.is_file():
        raise StepError(FAIL, f"no output image ({summary.get('failed')} failed)")
    if backend not in ("auto", summary["backend"]):
        raise StepError(FAIL, f"asked for {backend}, ran {summary['backend']}")
    foot = sum(summary.get("footprints", {}).values()) / MIB
    return (
        f"{summary['backend']} {summary['precision']}: {summary['seconds']:.2f} s, footprints {foot:.0f} MiB"
    )


def infer_step(backend: str) -> Callable[[Ctx], str]:
    def step(ctx: Ctx) -> str:
        return _infer(ctx, backend)

    step.__doc__ = f"trt-inpaint --backend {backend} --json on a sample photo."
    return step


def step_footprints(ctx: Ctx) -> str:
    """Each stage's accounted footprint against the memory it really takes (NVML on a GPU, RSS in a dry
    run): at load, and the extra a run at 512x512 needs on top (a footprint should cover it)."""
    if not (ctx.engines / "manifest.json").is_file():
        raise StepError(SKIPPED, "no engines (export failed)")
    backends = ["ort-cpu"] if ctx.dry_run else ["ort-cuda", "torch"]
    size = "128" if ctx.dry_run else "512"
    verdicts, failed = [], []
    for b in backends:
        path = ctx.work / f"footprints-{b}.json"
        cmd = python(str(Path(__file__)), "footprints", "--engines", str(ctx.engines), "--backend", b,
                     "--size", size, "--out", str(path))  # fmt: skip
        proc = run(ctx, f"footprints-{b}", cmd, 150)
        if proc.returncode == BACKEND_UNAVAILABLE:
            verdicts.append(f"{b}: unavailable ({last_line(proc.stderr)[:80]})")
            if b == "torch" or ctx.facts.get("ort_cuda") or ctx.facts.get("ort_cuda_expected"):
                failed.append(b)
            continue
        if proc.returncode != 0 or not path.is_file():
            failed.append(b)
            verdicts.append(f"{b}: {last_line(proc.stderr)}")
            continue
        rep = json.loads(path.read_text())
        short = [s["stage"] for s in rep["stages"] if not s["covered"]]
        verdicts.append(
            f"{b} via {rep['probe']}: " + ("all covered" if not short else f"short: {', '.join(short)}")
        )
        if short:
            failed.append(b)
    if ctx.dry_run:  # resident memory on a CPU: the numbers are for reading, the verdict is the GPU run's
        return "informational (dry run): " + "; ".join(verdicts)
    if failed:
        raise StepError(FAIL, "; ".join(verdicts))
    return "; ".join(verdicts)


def report_dir(ctx: Ctx) -> Path:
    if ctx.dry_run:
        return ctx.work / "reports" / "dry-run"
    name = (ctx.facts.get("gpus") or [{"name": "gpu"}])[0]["name"]
    for kind in ("H200", "H100"):
        if kind in name:
            return ROOT / "benchmarks" / "reports" / kind.lower()
    return ROOT / "benchmarks" / "reports" / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def step_bench(ctx: Ctx) -> str:
    """inpaint-bench into benchmarks/reports/<h200|h100>/ with the time left (full GPU rows when there is
    time, --quick otherwise); the report's three files are copied to --out."""
    if not (ctx.engines / "manifest.json").is_file():
        raise StepError(SKIPPED, "no engines (export failed)")
    out = report_dir(ctx)
    args = ["-m", "trt_inpaint.bench.cli", "--engines", str(ctx.engines), "--out", str(out)]
    if ctx.dry_run:
        args += ["--quick", "--backends", "ort-cpu-fp32,ort-cuda-fp16,tensorrt-fp16", "--sizes", "none",
                 "--budgets", "none", "--peak-n", "512"]  # fmt: skip
    else:
        gpu_rows = "ort-cuda-fp16,torch-cuda-fp16"
        args += [
            "--backends",
            f"ort-cpu-fp32,{gpu_rows},torch-cuda-fp32,torch-cuda-graphs-fp16,tensorrt-fp16",
        ]
        args += ["--scaling-backends", gpu_rows, "--batch-backends", gpu_rows]
        args += ["--budget-backend", "ort-cuda-fp16" if ctx.facts.get("ort_cuda") else "torch-cuda-fp16"]
        args += ["--sizes", "256,512,1024", "--runs", "5"] if ctx.remaining > 300 else ["--quick"]
    proc = run(ctx, "bench", python(*args), ctx.remaining - 15)
    files = [out / f for f in ("report.json", "report.md", "report.png")]
    for f in files:
        if f.is_file():
            shutil.copy(f, ctx.out / f.name)
    if proc.returncode != 0 or not files[0].is_file():
        raise StepError(FAIL, last_line(proc.stderr) or f"exit {proc.returncode}")
    report = json.loads(files[0].read_text())
    ran = [
        b["key"] for b in report["backends"] if b.get("available") and "error" not in (b.get("result") or {})
    ]
    return f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: measured {', '.join(ran)}"


STEPS: dict[str, tuple[Callable[[Ctx], str], float]] = {  # name -> (step, seconds it needs at least)
    "env": (step_env, 10),
    "device-match": (step_device_match, 20),
    "pytest": (step_pytest, 30),
    "export": (step_export, 60),
    "check": (step_check, 30),
    "check-rtx": (step_check_rtx, 15),
    "infer-ort-cuda": (infer_step("ort-cuda"), 20),
    "infer-torch": (infer_step("torch"), 20),
    "infer-tensorrt": (infer_step("tensorrt"), 10),
    "infer-auto": (infer_step("auto"), 20),
    "infer-ort-cpu": (infer_step("ort-cpu"), 20),
    "footprints": (step_footprints, 30),
    "bench": (step_bench, 60),
}


def run_steps(ctx: Ctx, steps: dict[str, tuple[Callable[[Ctx], str], float]]) -> int:
    """Run every step, whatever the ones before did; write the summary; 1 when any step failed."""
    for name, (fn, need) in steps.items():
        t0 = time.monotonic()
        if ctx.remaining < need:
            result = Result(name, SKIPPED, 0.0, f"out of time ({ctx.remaining:.0f} s left, needs {need:.0f})")
        else:
            print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
            try:
                result = Result(name, OK, 0.0, fn(ctx))
            except StepError as e:
                result = Result(name, e.status, 0.0, e.detail)
            except Exception as e:  # a bug in the step itself: loud, and the next step still runs
                result = Result(name, FAIL, 0.0, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
        result.seconds = round(time.monotonic() - t0, 1)
        ctx.results.append(result)
        write_summary(ctx)  # after every step: a call cut short still brings back what ran
        line = f"gpu-check: {name}: {result.status} ({result.seconds} s) {result.detail}"
        print(line if result.status != FAIL else f"\n!!! {line}\n", file=sys.stderr, flush=True)
    return finish(ctx)


def write_summary(ctx: Ctx) -> list[str]:
    rows = ["step\tstatus\tseconds\tdetail"]
    rows += [f"{r.name}\t{r.status}\t{r.seconds}\t{' '.join(r.detail.split())}" for r in ctx.results]
    (ctx.out / "summary.tsv").write_text("\n".join(rows) + "\n")
    (ctx.out / "log.txt").write_text("\n".join(ctx.log)[-8_000_000:])
    return rows


def finish(ctx: Ctx) -> int:
    rows = write_summary(ctx)
    with tarfile.open(ctx.out / "details.tar.gz", "w:gz") as tar:
        for p in sorted(ctx.work.iterdir()):
            if p.name not in ("engines", "rtx-engines") and p.is_file():
                tar.add(p, arcname=p.name)
    failed = [r.name for r in ctx.results if r.status == FAIL]
    print("\n".join(rows), file=sys.stderr)
    if failed:
        print(f"\n{'!' * 80}\ngpu-check: FAILED: {', '.join(failed)}\n{'!' * 80}", file=sys.stderr)
        return 1
    print("gpu-check: every step ok, unavailable as expected, or skipped", file=sys.stderr)
    return 0


# ---- footprints (a child process per backend) -----------------------------------------------------------


def footprints(engines: Path, backend: str, size: int) -> dict:
    """Load every ensemble stage on ``backend`` and compare each runner's footprint with the memory it took
    (NVML for CUDA backends, resident memory otherwise), then run each stage once at ``size`` and measure
    the extra its run needed at peak."""
    import numpy as np

    from trt_inpaint.export.spec import Pipeline, Role, pipeline_stages, random_feeds, spec
    from trt_inpaint.runtime import gpu
    from trt_inpaint.runtime.backends.base import Backend
    from trt_inpaint.runtime.backends.registry import make_runner, select
    from trt_inpaint.runtime.engines import EngineDir

    ed = EngineDir(engines)
    stages = list(pipeline_stages(Pipeline.ENSEMBLE))
    start = gpu.device_memory_used(0)
    selection = select(Backend(backend), ed, stages)  # the ort-cuda check creates its CUDA context here
    cuda = backend in ("ort-cuda", "tensorrt") or (backend == "torch" and gpu.gpu_problem() is None)
    probe_name = "NVML used" if cuda else "RSS"

    def probe() -> int:
        return int((gpu.device_memory_used(0) if cuda else gpu.process_rss()) or 0)

    rows, runners = [], {}
    for s in stages:
        runner = make_runner(selection, s, ed)
        before = probe()
        runner.load()
        rows.append({"stage": s.value, "estimate": runner.estimate_footprint(), "footprint": runner.footprint,
                     "load_growth": probe() - before})  # fmt: skip
        runners[s] = runner
    rng = np.random.default_rng(0)
    for row, s in zip(rows, stages, strict=True):
        side = spec(s).fixed_size or size
        feeds = random_feeds(s, 1, 0)
        for t in spec(s).inputs:
            if t.role is not Role.NOISE:
                feeds[t.name] = rng.random(t.concrete(1, side, side), dtype=np.float32)
        before, peak, stop = probe(), [0], threading.Event()

        def sample(peak=peak, stop=stop) -> None:
            while not stop.wait(0.005):
                peak[0] = max(peak[0], probe())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        runners[s].run(feeds)
        stop.set()
        thread.join()
        extra = max(0, max(peak[0], probe()) - before)
        row |= {"size": side, "run_extra": extra, "covered": extra <= 0.1 * row["footprint"] + 64 * MIB}
    for r in runners.values():
        r.unload()
    return {"backend": selection.backend.value, "precision": selection.precision.value, "probe": probe_name,
            "nvml_used_at_start": start, "stages": rows}  # fmt: skip


def footprints_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gpu_check.py footprints")
    p.add_argument("--engines", type=Path, required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    from trt_inpaint.errors import TrtInpaintError

    try:
        rep = footprints(a.engines, a.backend, a.size)
    except TrtInpaintError as e:
        print(f"footprints: error: {e}", file=sys.stderr)
        return e.exit_code
    a.out.write_text(json.dumps(rep, indent=1))
    for s in rep["stages"]:
        mib = {k: s[k] / MIB for k in ("footprint", "load_growth", "run_extra")}
        print(
            f"{s['stage']:15s} footprint {mib['footprint']:8.1f} MiB  load growth {mib['load_growth']:8.1f}  "
            f"run extra {mib['run_extra']:8.1f} at {s['size']}  {'ok' if s['covered'] else 'SHORT'}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["footprints"]:
        return footprints_main(argv[1:])
    p = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dry-run", action="store_true", help="CPU plumbing run with the reduced models")
    p.add_argument("--budget-s", type=float, default=525, help="wall-clock budget for all steps")
    p.add_argument("--steps", default=None, help=f"comma list of {', '.join(STEPS)} (default all)")
    a = p.parse_args(argv)
    names = [s.strip() for s in a.steps.split(",")] if a.steps else list(STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        p.error(f"unknown step {', '.join(unknown)}")
    if not a.dry_run:
        names = [n for n in names if n != "infer-ort-cpu"]  # the GPU run spends its time on GPU backends
    a.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("GPU_CHECK_WORK") or "/tmp/gpu-check-work")
    if a.dry_run:
        work = a.out.parent / f".{a.out.name}-work"
    if "export" in names:  # a fresh start; a rerun of later steps keeps the engines exported before
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(out=a.out, work=work, dry_run=a.dry_run, deadline=time.monotonic() + a.budget_s)
    return run_steps(ctx, {n: STEPS[n] for n in names})


if __name__ == "__main__":
    sys.exit(main())
