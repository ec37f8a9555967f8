"""Big-LaMa's cost per megapixel against image size on the CPU: plain vs factored DFT, in ONNX Runtime fp32
(default) or OpenVINO fp32 or bf16 (``--runtime``).

Exports the full-size LaMa stage from the same seeded random weights (weights do not change the speed), with
the Fourier units' DFT as plain matrix products (``FFTImpl.MATMUL``, before) and factored along H
(``FFTImpl.FACTORED``, after); counts both graphs' FLOPs (``trt_inpaint.bench.flops``); then times each at
every size in a child process of its own (one big session in memory at a time), in rounds over all sizes and
graphs so that each sees the load of every round. A third graph, "no DFT", has the factored graph's DFT cut
out: the floor, what LaMa costs if its DFT cost nothing. Per child: load, one first run and ``--warmup`` more
(not counted), then ``--runs`` timed runs, wall and process CPU seconds (intra-op spinning off, so CPU seconds
are work, not waiting; on a shared machine they are the steadier measure), and, in the first round, the time
by op type from ONNX Runtime's profiler (a session of its own, see ``worker``). The ratio of the largest to
the smallest size is taken within each round (the sizes of one round run minutes apart, under about the same
load) and its median over rounds reported beside the ratio of the pooled medians.

    PYTHONPATH=. python benchmarks/lama_scaling.py --out benchmarks/reports/cpu-2core [--work DIR]
        [--runtime ort|openvino-fp32|openvino-bf16]

Writes lama-scaling.json and lama-scaling.md into --out (``lama-scaling-openvino-bf16.*`` etc. for OpenVINO;
its compiled models are cached in --work, so each graph compiles once; no op profile there)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# report name -> FFTImpl value; "no DFT" is the cost floor: the factored graph's Fourier units with their DFT
# cut out (the spectral conv still runs, on a slice of the input): not a working model, only what LaMa
# costs when its DFT costs nothing
VARIANTS = {"plain": "matmul", "factored": "factored", "no DFT": None}
RUNTIMES = {
    "ort": "ONNX Runtime CPU fp32",
    "openvino-fp32": "OpenVINO CPU fp32",
    "openvino-bf16": "OpenVINO CPU bf16",
}
SIZES = (512, 1024, 2048)
# which run of the profiled session is profiled: with the memory pattern off, the first with no page faults
PROFILED_RUN = 3


def common_arguments(p: argparse.ArgumentParser, runs: str, runs_help: str) -> None:
    """The options this script shares with ``lama_op_growth.py``."""
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports/cpu-2core"))
    p.add_argument("--work", type=Path, default=Path("/tmp/lama-scaling"), help="where the ONNX files go")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", default=runs, type=parse_runs, help=runs_help)


def parse_runs(text: str) -> dict[int, int]:
    """``"512:3,2048:1"`` -> {512: 3, 2048: 1}."""
    return {int(k): int(v) for k, v in (x.split(":") for x in text.split(","))}


def graphs(work: Path) -> dict[str, Path]:
    """Each variant's ONNX file in ``work``, exported where missing."""
    work.mkdir(parents=True, exist_ok=True)
    paths = {name: work / f"lama.{impl or 'no-dft'}.onnx" for name, impl in VARIANTS.items()}
    for name, path in paths.items():
        if not path.is_file():
            print(f"exporting {path}", file=sys.stderr, flush=True)
            export(VARIANTS[name], path)
    return paths


def export(impl: str | None, path: Path) -> None:
    from trt_inpaint.export import spec as S
    from trt_inpaint.export.onnx import export_onnx
    from trt_inpaint.models import stages
    from trt_inpaint.models.ffc import FourierUnit, set_fft
    from trt_inpaint.models.fft import FFTImpl

    model = stages.random_stage_model(S.Stage.LAMA, seed=0)
    set_fft(model, FFTImpl(impl or "factored"))
    if impl is None:
        for m in model.modules():
            if isinstance(m, FourierUnit):
                m.forward = _no_dft.__get__(m)
    export_onnx(stages.build_stage(S.Stage.LAMA, model).eval(), S.Stage.LAMA, path)


def _no_dft(self, x):
    """A FourierUnit's forward without its DFT: the same spectral conv on x's first W//2+1 columns."""
    import torch

    w = x.shape[-1]
    half = x[..., : torch.arange(0, w + 1, 2).shape[0]]
    spec = self.relu(self.bn(self.conv_layer(torch.stack((half, half), dim=2).flatten(1, 2))))
    return torch.nn.functional.pad(spec.unflatten(1, (-1, 2))[:, :, 0], (0, w - half.shape[-1]))


def flops(path: Path) -> dict[int, dict]:
    from trt_inpaint.bench.flops import count_file_sizes

    sets = [{"image": (1, 3, s, s), "mask": (1, 1, s, s)} for s in SIZES]
    return {s: {"total": fc.total, "by_op": fc.by_op, "complete": fc.complete}
            for s, fc in zip(SIZES, count_file_sizes(path, sets), strict=True)}  # fmt: skip


def _openvino(path: str, runtime: str):
    """The product's OpenVINO runner for the LaMa stage (``--backend openvino``: its config, its
    compiled-model cache under the graph's folder), loaded, with ONNX Runtime's ``run(names, feeds)`` call and
    the precision it compiled for (OpenVINO's name: "f32", "bf16")."""
    from types import SimpleNamespace

    from trt_inpaint.export.spec import Precision, Stage
    from trt_inpaint.runtime.backends.openvino import OpenVinoRunner

    precision = Precision(runtime.removeprefix("openvino-"))
    runner = OpenVinoRunner(
        Stage.LAMA, path, precision=precision, threads=os.cpu_count() or 1, cache_root=Path(path).parent
    )
    runner.load()
    return SimpleNamespace(run=lambda _names, feeds: runner.run(feeds), precision=runner.compiled_precision)


def ort_session(
    model: str | bytes,
    profile_prefix: Path | None = None,
    mem_pattern: bool = True,
    threads: int | None = None,
):
    """An ONNX Runtime CPU session (of a file, or a serialized model) as timed here: ``threads`` intra-op
    threads (default all cores), spinning off (so CPU seconds are work, not waiting); profiled into
    ``profile_prefix``_<date>.json where given."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads or os.cpu_count() or 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_mem_pattern = mem_pattern
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = str(profile_prefix)
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def inputs(size: int, rng) -> dict:
    """LaMa's feeds at ``size`` x ``size``: a random image and a random mask with about 20% holes."""
    import numpy as np

    return {
        "image": rng.random((1, 3, size, size), dtype=np.float32),
        "mask": (rng.random((1, 1, size, size)) < 0.2).astype(np.float32),
    }


def worker(path: str, size: int, runs: int, profile: bool, runtime: str = "ort", warmup: int = 1) -> dict:
    """Runs in the child: one session, a first run, ``warmup`` untimed runs, then ``runs`` timed runs. The
    warm-up matters at large sizes: ONNX Runtime's first runs at a new size still grow its memory (measured
    at 2048 on the factored graph: 4.7-5.0 s of system time per MP in page faults in the first run, 3.6-3.8
    in the second, 1.1-1.4 in the third, 0.02 from the fourth on; with the session's memory pattern off, none
    from the third run, but 2-4% more user time at both 512 and 2048).

    With ``profile`` (ONNX Runtime only), before that: the time by op type of run ``PROFILED_RUN`` of a
    profiled session with the memory pattern off (so without page faults: a first run's profile is mostly
    the faults at 2048, e.g. ConvTranspose at 22% of it instead of about 11%), in a session of its own since
    the profiler slows every run it records (by about 4% at 512)."""
    import numpy as np

    feeds = inputs(size, np.random.default_rng(0))
    share = None
    if profile and runtime == "ort":
        prof = ort_session(path, Path(path).with_suffix(f".{size}.prof"), mem_pattern=False)
        for _ in range(PROFILED_RUN):
            prof.run(None, feeds)
        share = _op_share(prof.end_profiling())
        del prof
    sess = ort_session(path) if runtime == "ort" else _openvino(path, runtime)
    t0 = time.perf_counter()
    sess.run(None, feeds)
    out = {"first_s": time.perf_counter() - t0, "wall_s": [], "cpu_s": [], "load": [os.getloadavg()[0]]}
    if runtime != "ort":
        out["precision"] = sess.precision
    if share is not None:
        out["op_share"] = share
    for _ in range(warmup):
        sess.run(None, feeds)
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        sess.run(None, feeds)
        out["cpu_s"].append(time.process_time() - c)
        out["wall_s"].append(time.perf_counter() - w)
        out["load"].append(os.getloadavg()[0])
    return out


def model_runs(events: list[dict]) -> list[dict]:
    """The ``model_run`` events of an ONNX Runtime profile (one per ``run``), in order."""
    return [e for e in events if e.get("name") == "model_run"]


def kernel_time(events: list[dict], runs: list[dict]) -> dict[str, float]:
    """Kernel microseconds by op type (ONNX Runtime's names, after its optimisations) inside the windows of
    ``runs`` (``model_run`` events of the same profile), summed over them."""
    windows = [(r["ts"], r["ts"] + r["dur"]) for r in runs]
    by: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            if any(start <= e["ts"] <= end for start, end in windows):
                by[e["args"]["op_name"]] = by.get(e["args"]["op_name"], 0.0) + e["dur"]
    return by


def _op_share(profile_file: str) -> dict[str, float]:
    """Kernel time by op type in the profile's last run, as shares of their sum; the file is removed."""
    events = json.loads(Path(profile_file).read_text())
    Path(profile_file).unlink()
    by = kernel_time(events, model_runs(events)[-1:])
    total = sum(by.values()) or 1.0
    return {k: v / total for k, v in sorted(by.items(), key=lambda kv: -kv[1])}


def measure(paths: dict[str, Path], runs: dict[int, int], rounds: int, runtime: str, warmup: int) -> dict:
    samples: dict[str, dict[int, dict]] = {v: {} for v in paths}
    for rnd in range(rounds):  # rounds outermost: every size and graph sees the load of every round
        for size in SIZES:
            for name, path in paths.items():
                print(f"{name} at {size}, round {rnd + 1}/{rounds}", file=sys.stderr, flush=True)
                cmd = [sys.executable, __file__, "--worker", str(path), str(size), str(runs[size])]
                cmd += ["--runtime", runtime, "--warmup", str(warmup)]
                if rnd == 0:
                    cmd.append("--profile")
                res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                agg = samples[name].setdefault(
                    size, {"first_s": [], "wall_s": [], "cpu_s": [], "load": [], "round": []}
                )
                for k in ("wall_s", "cpu_s", "load"):
                    agg[k] += res[k]
                agg["round"] += [rnd] * len(res["cpu_s"])
                agg["first_s"].append(res["first_s"])
                if "op_share" in res:
                    agg["op_share"] = res["op_share"]
    return samples


def machine() -> dict:
    import onnxruntime as ort

    from trt_inpaint.bench.machine import CPU_FEATURES
    from trt_inpaint.runtime.cpu import cpu_flags, read_cpuinfo

    flags = cpu_flags() or frozenset()
    model = read_cpuinfo().get("model name") or platform.processor()
    out = {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in CPU_FEATURES if f in flags],
           "onnxruntime": ort.__version__, "python": platform.python_version()}  # fmt: skip
    try:
        import openvino as ov

        out["openvino"] = ov.__version__.split("-")[0]
    except ImportError:
        pass
    return out


def header() -> dict:
    """What every report of these scripts starts its JSON with: when (UTC, to the minute) and on what."""
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}


def write_report(out: Path, stem: str, data: dict, render) -> None:
    """``stem``.json (``data``) and ``stem``.md (``render(data)``) into ``out``; the Markdown also printed."""
    text = render(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1))
    (out / f"{stem}.md").write_text(text)
    print(text)


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def _ratio_table(data: dict, key: str, what: str) -> list[str]:
    """The largest size's ``key`` per megapixel over the smallest's, pooled and round by round."""
    lo, hi = SIZES[0], SIZES[-1]
    lines = ["", f"{hi} vs {lo}, {what} per megapixel (flat = 1.00):", ""]
    lines += [
        "| DFT | ratio of the medians | median of the per-round ratios | per round |",
        "|---|---|---|---|",
    ]
    for name, per in data["samples"].items():
        a, b = per[str(lo)], per[str(hi)]
        pooled = (_med(b[key]) / hi**2) / (_med(a[key]) / lo**2)
        rounds = sorted(set(a["round"]) & set(b["round"]))
        by = [
            (_med([c for c, r in zip(b[key], b["round"], strict=True) if r == k]) / hi**2)
            / (_med([c for c, r in zip(a[key], a["round"], strict=True) if r == k]) / lo**2)
            for k in rounds
        ]
        each = ", ".join(f"{x:.3f}" for x in by)
        lines.append(f"| {name} | {pooled:.3f} | {_med(by):.3f} | {each} |")
    return lines


def render(data: dict) -> str:
    m = data["machine"]
    runtime = data.get("runtime", "ort")
    version = (
        f"ONNX Runtime {m['onnxruntime']}"
        if runtime == "ort"
        else f"OpenVINO {m.get('openvino')} (trt-inpaint's runner, as `--backend openvino`)"
    )
    lines = [
        f"# Big-LaMa's cost per megapixel: plain vs factored DFT ({RUNTIMES[runtime]})",
        "",
        f"{data['date']} on **{m['cpu']}**, {m['cores']} cores (flags: {', '.join(m['flags'])}), "
        f"{version}, {m['cores']} threads"
        f"{', spinning off' if runtime == 'ort' else ''}. Full-size big-LaMa "
        "(51.0M parameters, seeded random weights: they do not change the speed), batch 1, square inputs. "
        f"Load average (1 min) over the timed runs: {data['load_min']:.1f} to {data['load_max']:.1f} on "
        f"{m['cores']} cores: the machine was shared, so absolute times are upper bounds; compare the "
        "ratios. "
        "Each cell: median over the timed runs (each size and graph in child processes of its own, in "
        "rounds over all sizes and graphs; "
        + (
            f"the first run after loading and {data['warmup']} warm-up run{'s' * (data['warmup'] != 1)} "
            "are not counted"
            if "warmup" in data
            else "the first run after loading is not counted"
        )
        + "). CPU seconds: both "
        'threads\' work (steadier than wall time on a shared machine). "no DFT": the factored graph with '
        "its DFT cut out (not a working model): the floor.",
        "",
        f"| DFT | size | MP | wall s | s / MP (wall) | CPU s | CPU s / MP | vs {SIZES[0]} (CPU) | GFLOP "
        "| GFLOP / MP | MatMul share of FLOPs | runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, per in data["samples"].items():
        base = None
        for size in SIZES:
            s = per[str(size)]
            mp = size * size / 1e6
            cpu = _med(s["cpu_s"]) / mp
            base = base or cpu
            f = data["flops"][name][str(size)]
            wall, cpu_s = _med(s["wall_s"]), _med(s["cpu_s"])
            cells = (
                f"{name} | {size}x{size} | {mp:.3f} | {wall:.1f} | {wall / mp:.2f} | {cpu_s:.1f} | "
                f"{cpu:.2f} | {cpu / base:.3f} | {f['total'] / 1e9:,.0f} | {f['total'] / 1e9 / mp:,.0f} | "
                f"{f['by_op'].get('MatMul', 0) / f['total']:.1%} | {len(s['cpu_s'])}"
            )
            lines.append(f"| {cells} |")
    lines += _ratio_table(data, "cpu_s", "CPU seconds")
    lines += _ratio_table(
        data, "wall_s", "wall-clock seconds (the time a user waits; other work on a shared host shows in it)"
    )
    if runtime != "ort":
        return "\n".join(lines) + "\n"
    ops = ("MatMul", "Transpose", "Conv", "ConvTranspose")
    title = (
        f"Time by op type (profiler, run {PROFILED_RUN} of a session of its own with the memory pattern off, "
        "i.e. without page faults, first round; share of kernel time):"
    )
    lines += ["", title]
    lines += ["", "| DFT | size | " + " | ".join((*ops, "other")) + " |", "|---|---|---|---|---|---|---|"]
    for name, per in data["samples"].items():
        for size in SIZES:
            share = per[str(size)].get("op_share", {})
            main = [share.get(k, 0.0) for k in ops]
            cells = " | ".join(f"{x:.1%}" for x in (*main, 1 - sum(main)))
            lines.append(f"| {name} | {size}x{size} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p, "512:3,1024:2,2048:1", "timed runs per child, by size")
    p.add_argument("--runtime", choices=list(RUNTIMES), default="ort")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs after the first, per child")
    p.add_argument("--worker", nargs=3, metavar=("ONNX", "SIZE", "RUNS"), help=argparse.SUPPRESS)
    p.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(
            json.dumps(
                worker(a.worker[0], int(a.worker[1]), int(a.worker[2]), a.profile, a.runtime, a.warmup)
            )
        )
        return 0
    paths = graphs(a.work)
    data = header()
    data["runtime"], data["warmup"] = a.runtime, a.warmup
    data["flops"] = {name: {str(s): v for s, v in flops(path).items()} for name, path in paths.items()}
    samples = measure(paths, a.runs, a.rounds, a.runtime, a.warmup)
    data["samples"] = {n: {str(s): v for s, v in per.items()} for n, per in samples.items()}
    loads = [x for per in samples.values() for s in per.values() for x in s["load"]]
    data["load_min"], data["load_max"] = min(loads), max(loads)
    write_report(a.out, "lama-scaling" + ("" if a.runtime == "ort" else f"-{a.runtime}"), data, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
