"""benchmarks/gpu-check.sh: its CPU dry run end to end, and a failing check that does not stop the others."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.benchmarks.scripts import ROOT, load_script

# pytest (the GPU branches of the suite's own tests) and the torch / auto runs are left out to keep this
# test short: they are plain commands the dry run has no plumbing of their own for
STEPS = "env,device-match,export,check,check-rtx,infer-ort-cuda,infer-tensorrt,infer-ort-cpu,footprints,bench"


def _summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.tsv") as f:
        return {r["step"]: r for r in csv.DictReader(f, delimiter="\t")}


def test_dry_run(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "GPU_CHECK_STEPS": STEPS}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu-check.sh"), "--dry-run"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = {p.name for p in out.iterdir()}
    assert files == {"summary.tsv", "log.txt", "details.tar.gz", "report.json", "report.md", "report.png"}
    rows = _summary(out)
    assert list(rows) == STEPS.split(",")
    status = {k: r["status"] for k, r in rows.items()}
    assert status["device-match"] == "skipped" and status["check-rtx"] in ("ok", "skipped")
    assert status["infer-ort-cuda"] == status["infer-tensorrt"] == "unavailable"
    assert all(status[k] == "ok" for k in ("env", "export", "check", "infer-ort-cpu", "footprints", "bench"))
    assert "CUDAExecutionProvider" in rows["infer-ort-cuda"]["detail"]
    assert rows["check"]["detail"].startswith("0 engines compared; 5 CPU fallbacks (first: no engine")
    with tarfile.open(out / "details.tar.gz") as tar:
        names = set(tar.getnames())
        infer = json.load(tar.extractfile("infer-ort-cpu.json"))
        foot = json.load(tar.extractfile("footprints-ort-cpu.json"))
    assert {"env.json", "check.log", "bench.log", "inpainted-ort-cpu.png"} <= names
    assert infer["backend"] == "ort-cpu" and infer["written"] == 1
    assert [s["stage"] for s in foot["stages"]] == [
        "lama",
        "lama_denoiser",
        "mat",
        "combiner",
        "final_denoiser",
    ]
    report = json.loads((out / "report.json").read_text())
    cuda_row = next(b for b in report["backends"] if b["key"] == "ort-cuda-fp16")
    assert not cuda_row["available"] and "CUDAExecutionProvider" in cuda_row["reason"]
    assert "FAILED" not in proc.stderr


def _driver():
    return load_script("gpu_check")


def test_a_failing_check_is_loud_and_the_next_one_runs(tmp_path, capsys):
    g = _driver()
    ctx = g.Ctx(out=tmp_path / "out", work=tmp_path / "work", dry_run=True, deadline=g.time.monotonic() + 120)
    ctx.out.mkdir()
    ctx.work.mkdir()

    def exits_3(ctx):
        proc = g.run(ctx, "exits-3", [sys.executable, "-c", "import sys; print('partial'); sys.exit(3)"], 60)
        if proc.returncode:
            raise g.StepError(g.FAIL, f"exit {proc.returncode}")
        return "never"

    def buggy(ctx):
        return {}["missing"]

    def fine(ctx):
        return "ran after the failures"

    steps = {"exits-3": (exits_3, 1), "buggy": (buggy, 1), "fine": (fine, 1), "too-long": (fine, 1e6)}
    assert g.run_steps(ctx, steps) == 1
    rows = _summary(ctx.out)
    assert [(k, r["status"]) for k, r in rows.items()] == [
        ("exits-3", "FAIL"), ("buggy", "FAIL"), ("fine", "ok"), ("too-long", "skipped"),
    ]  # fmt: skip
    assert rows["buggy"]["detail"].startswith("KeyError") and "out of time" in rows["too-long"]["detail"]
    err = capsys.readouterr().err
    assert "!!! gpu-check: exits-3: FAIL" in err and "gpu-check: FAILED: exits-3, buggy" in err
    assert "partial" in (ctx.out / "log.txt").read_text() and (ctx.work / "exits-3.log").is_file()
