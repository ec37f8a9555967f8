"""Where big-LaMa's cost per megapixel grows, op type by op type: ONNX Runtime CPU fp32, the smallest and the
largest size of ``lama_scaling.py`` in ONE process, their runs alternating.

``lama_scaling.py`` times each size in a process of its own and profiles one run per size, minutes apart; on
a shared host that cannot tell an op that grows from a slower minute. Here, per graph (plain DFT, factored
DFT, the DFT cut out: ``lama_scaling.VARIANTS``), one child process holds a profiled session per size (the
memory pattern on, as in the timed runs), runs each once plus ``--warmup`` times (not counted: its first
runs at a new size page-fault), then ``--rounds`` rounds in which every size runs ``--runs`` times (by
default 3 at the smallest, 1 at the largest), so both sizes see the same minutes; then the profiler is
stopped and the same rounds run again, timed (wall and process CPU seconds). The report gives each op type's
kernel seconds per megapixel at both sizes, averaged over the counted runs, the profiled runs' totals and the
unprofiled ones: the profiler costs more per megapixel at the small size (more, shorter kernels), so its
ratios understate the growth; the unprofiled rows are the ratios a user sees.

    PYTHONPATH=. python benchmarks/lama_op_growth.py --out benchmarks/reports/cpu-2core [--work DIR]

Uses (and, where missing, exports into) ``--work`` the graphs ``lama_scaling.py`` uses; about 27 minutes on
2 cores. Writes lama-op-growth.json and lama-op-growth.md into --out."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script lama_scaling.py
import lama_scaling  # noqa: E402

# op types shown one per row (ONNX Runtime's names after its optimisations); the rest are summed in "other"
OPS = ("Conv", "ConvTranspose", "MatMul", "Transpose", "Pad", "ReorderInput", "ReorderOutput", "Add")


def worker(path: str, runs: dict[int, int], rounds: int, warmup: int) -> dict:
    """In the child: a profiled session per size; ``1 + warmup`` uncounted runs each, then ``rounds`` rounds
    of ``runs[size]`` runs per size, then the profiler stopped and the same rounds again, timed. Per size:
    kernel seconds per megapixel by op type and the profiled runs' own (their ``model_run`` durations), the
    counted runs only, and the unprofiled runs' wall and CPU seconds per megapixel; the profiles are removed.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    sessions = {
        size: (
            lama_scaling.ort_session(path, Path(path).with_suffix(f".growth{size}")),
            lama_scaling.inputs(size, rng),
        )
        for size in runs
    }
    for sess, feeds in sessions.values():
        for _ in range(1 + warmup):
            sess.run(None, feeds)
    loads = [os.getloadavg()[0]]
    timed: dict[int, dict[str, list[float]]] = {size: {"wall": [], "cpu": []} for size in sessions}

    def rounds_of_runs(time_them: bool) -> None:
        for _ in range(rounds):
            for size, (sess, feeds) in sessions.items():
                for _ in range(runs[size]):
                    w, c = time.perf_counter(), time.process_time()
                    sess.run(None, feeds)
                    if time_them:
                        timed[size]["cpu"].append((time.process_time() - c) / (size * size / 1e6))
                        timed[size]["wall"].append((time.perf_counter() - w) / (size * size / 1e6))
            loads.append(os.getloadavg()[0])

    rounds_of_runs(time_them=False)
    profiles = {size: Path(sess.end_profiling()) for size, (sess, _) in sessions.items()}  # stops profiling
    rounds_of_runs(time_them=True)
    out: dict = {"load": loads}
    for size, profile in profiles.items():
        events = json.loads(profile.read_text())
        profile.unlink()
        counted = lama_scaling.model_runs(events)[1 + warmup :]
        per = len(counted) * size * size / 1e6  # run-megapixels: divides totals into s/MP per run
        kernels = lama_scaling.kernel_time(events, counted)
        out[str(size)] = {
            "runs": len(counted),
            "run_s_per_mp": [r["dur"] / 1e6 / (size * size / 1e6) for r in counted],
            "kernel_s_per_mp": {k: v / 1e6 / per for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])},
            "unprofiled_wall_s_per_mp": timed[size]["wall"],
            "unprofiled_cpu_s_per_mp": timed[size]["cpu"],
        }
    return out


def measure(paths: dict[str, Path], runs: dict[int, int], rounds: int, warmup: int) -> dict:
    """``worker`` per graph, each in a child process of its own (one graph's sessions in memory at a time)."""
    out = {}
    for name, path in paths.items():
        print(f"{name}: {rounds} rounds at {', '.join(map(str, runs))}", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--worker", str(path), "--rounds", str(rounds)]
        cmd += ["--warmup", str(warmup), "--runs", ",".join(f"{s}:{n}" for s, n in runs.items())]
        out[name] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def render(data: dict) -> str:
    m = data["machine"]
    lo, hi = str(data["sizes"][0]), str(data["sizes"][-1])
    loads = [x for per in data["samples"].values() for x in per["load"]]
    lines = [
        f"# Where big-LaMa's cost per megapixel grows from {lo} to {hi}, op by op (ONNX Runtime CPU fp32)",
        "",
        f"{data['date']} on **{m['cpu']}**, {m['cores']} cores (flags: {', '.join(m['flags'])}), "
        f"ONNX Runtime {m['onnxruntime']}, {m['cores']} threads, spinning off. Full-size big-LaMa, seeded "
        "random weights, batch 1, square inputs. Per graph one process holds a profiled session per size "
        f"and alternates them: {data['warmup']} warm-up runs each after the first (not counted), then "
        f"{data['rounds']} rounds of {' + '.join(f'{n} at {s}' for s, n in data['runs'].items())}, then the "
        "profiler stopped and the same rounds again, timed. Load average (1 min): "
        f"{min(loads):.1f} to {max(loads):.1f} on {m['cores']} cores. Op rows: kernel seconds per megapixel "
        "by op type (ONNX Runtime's names after its optimisations: Reorder* are its layout conversions "
        "around ops that have no blocked-layout kernel, such as Pad), mean over the profiled runs; "
        '"profiled run": their whole runs, mean; "unprofiled run": wall and CPU seconds (both threads) per '
        f"megapixel, median. The profiler costs more per megapixel at {lo} than at {hi} (more, shorter "
        "kernels; compare the two run rows), so the op rows' ratios understate the growth: the unprofiled "
        'rows are what a user sees. "no DFT": the factored graph with its DFT cut out (the floor).',
        "",
        f"| DFT | op type | s / MP at {lo} | s / MP at {hi} | difference | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, per in data["samples"].items():
        a, b = per[lo]["kernel_s_per_mp"], per[hi]["kernel_s_per_mp"]
        rest = sorted((set(a) | set(b)) - set(OPS))
        rows = [(op, a.get(op, 0.0), b.get(op, 0.0)) for op in OPS if op in a or op in b]
        rows.append(("other", sum(a.get(k, 0.0) for k in rest), sum(b.get(k, 0.0) for k in rest)))
        rows.append(("**all kernels**", sum(a.values()), sum(b.values())))
        rows.append(("**profiled run**", _mean(per[lo]["run_s_per_mp"]), _mean(per[hi]["run_s_per_mp"])))
        med = statistics.median
        for what, key in (("wall", "unprofiled_wall_s_per_mp"), ("CPU", "unprofiled_cpu_s_per_mp")):
            rows.append((f"**unprofiled run, {what}**", med(per[lo][key]), med(per[hi][key])))
        for op, x, y in rows:
            ratio = f"{y / x:.3f}" if x > 0 else "-"
            lines.append(f"| {name} | {op} | {x:.3f} | {y:.3f} | {y - x:+.3f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lo, hi = lama_scaling.SIZES[0], lama_scaling.SIZES[-1]
    lama_scaling.common_arguments(p, f"{lo}:3,{hi}:1", "counted runs per round, by size")
    p.add_argument("--warmup", type=int, default=3, help="uncounted runs after the first, per size")
    p.add_argument("--worker", metavar="ONNX", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, a.runs, a.rounds, a.warmup)))
        return 0
    paths = lama_scaling.graphs(a.work)
    data = lama_scaling.header()
    data["sizes"] = sorted(a.runs)
    data["runs"], data["rounds"], data["warmup"] = {str(s): n for s, n in a.runs.items()}, a.rounds, a.warmup
    data["samples"] = measure(paths, a.runs, a.rounds, a.warmup)
    lama_scaling.write_report(a.out, "lama-op-growth", data, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
