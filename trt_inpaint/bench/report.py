"""report.json, report.md (one table to read at a glance, then the details) and report.png."""

from __future__ import annotations

import json
from pathlib import Path

from trt_inpaint import atomic
from trt_inpaint.runtime.units import format_bytes

MIB = 1024**2
GOAL_RATIO = 1.5  # ONNX Runtime CPU fp32 over PyTorch eager fp32, end to end
# OpenVINO bf16 end to end over (row, goal), judged where the CPU has native bf16 (issue 13)
BF16_GOALS = (("ort-cpu-fp32", 2.0), ("torch-fp32", 4.0))


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x * 1000:,.0f}" if x >= 0.1 else f"{x * 1000:,.1f}"


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    if x is None:
        return ""
    if fmt == "{:.1f}" and 0 < abs(x) < 0.1:
        return f"{x:.2g}"
    return fmt.format(x)


def _mib(x: int | None) -> str:
    return "" if not x else f"{x / MIB:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def pct_of_peak(flops: float | None, seconds: float | None, peak: float | None) -> float | None:
    if not flops or not seconds or not peak:
        return None
    return 100.0 * flops / seconds / peak


def _stage_flops(report: dict, stage: str, size: int) -> float | None:
    entry = report.get("flops", {}).get(stage, {}).get(str(size))
    return entry.get("total") if entry and entry.get("complete", True) else None


def main_pipeline_run(res: dict, batch: int = 1) -> dict | None:
    for run in res.get("pipeline_runs", []):
        if run["batch"] == batch:
            return run
    return None


def _row_name(b: dict) -> str:
    return f"{b['label']} {b['numeric']}"


def speedup(report: dict, test: str, base: str, goal: float) -> dict | None:
    """Row ``test`` against row ``base``, end to end, same run: base p50 / test p50; None unless both ran."""
    by = {b["key"]: b for b in report["backends"]}
    runs = [main_pipeline_run(by.get(k, {}).get("result") or {}) for k in (test, base)]
    if not all(runs):
        return None
    t, b = (r["end_to_end"]["stats"]["p50"] for r in runs)
    return {
        "test": _row_name(by[test]), "base": _row_name(by[base]), "test_p50": t, "base_p50": b,
        "speedup": b / t, "goal": goal, "met": b / t >= goal,
    }  # fmt: skip


def headline_ratio(report: dict) -> dict | None:
    """ONNX Runtime CPU fp32 vs PyTorch eager fp32, end to end, same run: speed-up (torch p50 / ort p50)."""
    h = speedup(report, "ort-cpu-fp32", "torch-fp32", GOAL_RATIO)
    if h is not None:
        h.update(torch_p50=h["base_p50"], ort_p50=h["test_p50"])
    return h


def bf16_headlines(report: dict) -> list[dict]:
    """OpenVINO bf16 against ONNX Runtime CPU fp32 (goal 2x) and PyTorch eager fp32 (goal 4x), where the rows
    ran (the bf16 row runs only on CPUs with native bf16)."""
    return [h for base, goal in BF16_GOALS if (h := speedup(report, "openvino-bf16", base, goal))]


def row_peak(report: dict, numeric: str) -> float | None:
    """The ceiling of a row's "% of peak": the bf16 matmul peak for bf16 rows where measured, else fp32."""
    peak = report["peak"]
    return peak.get("bf16_flops") or peak["flops"] if numeric == "bf16" else peak["flops"]


def main_rows(report: dict) -> list[list[str]]:
    rows = []
    for b in report["backends"]:
        peak = row_peak(report, b["numeric"])
        head = [b["label"], b["numeric"]]
        if not b["available"]:
            extra = f" (measured: {b['partial']}, see below)" if b.get("partial") else ""
            if "error" in (b.get("result") or {}):  # the partial measurement failed
                extra = f"; its {b['partial']} failed: {b['result']['error']}"
            rows.append([*head, "-", f"not available here: {b['reason']}{extra}", "", "", "", "", "", ""])
            continue
        res = b.get("result") or {}
        if "error" in res:
            rows.append([*head, "-", f"failed: {res['error']}", "", "", "", "", "", ""])
            continue
        run = main_pipeline_run(res)
        if run is None:
            continue
        size, e2e_flops = run["size"], 0.0
        for st in run["stages"]:
            f = _stage_flops(report, st["stage"], size)
            e2e_flops = e2e_flops + f if (f is not None and e2e_flops is not None) else None
            rows.append(
                [
                    *head,
                    st["stage"],
                    "ok",
                    _ms(st["stats"]["p50"]),
                    _ms(st["stats"]["p90"]),
                    _f(st["images_per_s"]),
                    _mib(st["stage_memory"]),
                    _f(f and f / st["stats"]["p50"] / 1e9, "{:.1f}"),
                    _f(pct_of_peak(f, st["stats"]["p50"], peak), "{:.0f}%"),
                ]
            )
        e = run["end_to_end"]
        rows.append(
            [
                *head,
                f"**end to end** ({run['pipeline']})",
                "ok",
                f"**{_ms(e['stats']['p50'])}**",
                _ms(e["stats"]["p90"]),
                f"**{_f(e['images_per_s'], '{:.3f}')}**",
                _mib(e["peak_rss"]),
                _f(e2e_flops and e2e_flops / e["stats"]["p50"] / 1e9, "{:.1f}"),
                _f(pct_of_peak(e2e_flops, e["stats"]["p50"], peak), "{:.0f}%"),
            ]
        )
    return rows


MAIN_HEADER = [
    "backend",
    "precision",
    "stage",
    "status",
    "p50 ms",
    "p90 ms",
    "images/s",
    "peak MiB",
    "GFLOP/s",
    "% of peak",
]


def main_table(report: dict) -> str:
    return _table(MAIN_HEADER, main_rows(report))


def _load_text(st: dict) -> str:
    cached = {True: " (from cache)", False: " (compiled)"}.get(st.get("from_cache"), "")
    return _f(st["load_s"], "{:.2f}") + cached


def _one_time_rows(report: dict) -> list[list[str]]:
    rows = []
    for b in report["backends"]:
        run = main_pipeline_run(b.get("result") or {}) if b["available"] else None
        if not run:
            continue
        for st in run["stages"]:
            rows.append(
                [
                    b["label"],
                    b["numeric"],
                    st["stage"],
                    _load_text(st),
                    _f(st["first_run_s"], "{:.2f}"),
                    _mib(st["load_rss"]),
                    _mib(st["work_peak_delta"]),
                    _mib(st["footprint"]),
                    _mib(st.get("device_peak")),
                ]
            )
    return rows


def _cache_rows(report: dict) -> list[list[str]]:
    rows = []
    for b in report["backends"]:
        for r in (b.get("result") or {}).get("cache_loads", []):
            rows.append(
                [
                    b["label"],
                    b["numeric"],
                    r["stage"],
                    _f(r["first_load_s"], "{:.2f}"),
                    _f(r["later_load_s"], "{:.2f}"),
                    _f(r["first_load_s"] / r["later_load_s"] if r["later_load_s"] else None, "{:.1f}x"),
                    _mib(r["cache_bytes"]) or "0",
                    "yes" if r["later_from_cache"] and not r["first_from_cache"] else "NO",
                ]
            )
    return rows


def _scaling_rows(report: dict) -> list[list[str]]:
    rows = []
    for b in report["backends"]:
        peak = row_peak(report, b["numeric"])
        for s in (b.get("result") or {}).get("scaling", []):
            f = _stage_flops(report, s["stage"], s["size"])
            p50 = s["stats"]["p50"]
            rows.append(
                [
                    b["label"],
                    b["numeric"],
                    s["stage"],
                    f"{s['size']}x{s['size']}",
                    _f(s["megapixels"], "{:.3f}"),
                    _ms(p50),
                    _ms(s["stats"]["p90"]),
                    _f(s["s_per_megapixel"], "{:.2f}"),
                    _f(f and f / 1e9, "{:,.0f}"),
                    _f(f and f / p50 / 1e9, "{:.1f}"),
                    _f(pct_of_peak(f, p50, peak), "{:.0f}%"),
                    _mib(s["peak_rss"]),
                    _runs_text(s["stats"]["n"], s.get("first_is_sample", False)),
                ]
            )
    return rows


def _runs_text(n: int, first_is_sample: bool) -> str:
    return "1 (the first run)" if first_is_sample else str(n)


def _batch_rows(report: dict) -> list[list[str]]:
    rows = []
    for b in report["backends"]:
        runs = (b.get("result") or {}).get("pipeline_runs", [])
        if len(runs) < 2:
            continue
        base = runs[0]["end_to_end"]["images_per_s"]
        for r in runs:
            e = r["end_to_end"]
            rows.append(
                [
                    b["label"],
                    b["numeric"],
                    r["pipeline"],
                    str(r["batch"]),
                    _ms(e["stats"]["p50"]),
                    _f(e["images_per_s"], "{:.3f}"),
                    _f(e["images_per_s"] / base, "{:.2f}x"),
                    _mib(e["peak_rss"]),
                    _runs_text(e["stats"]["n"], r.get("first_is_sample", False)),
                ]
            )
    return rows


def _budget_rows(report: dict) -> list[list[str]]:
    rows = []
    for b in report["backends"]:
        for r in (b.get("result") or {}).get("budgets", []):
            if "error" in r:
                rows.append([b["label"], b["numeric"], r["budget_text"], r["mode"], str(r["images"]),
                             *[""] * 10, f"failed: {r['error']}"])  # fmt: skip
                continue
            rows.append(
                [b["label"], b["numeric"], r["budget_text"], r["mode"], str(r["images"]), str(r["loads"]),
                 str(r["reloads"]), str(r["swaps"]), _f(r["load_s"], "{:.2f}"), _f(r["swap_in_s"], "{:.2f}"),
                 _f(r["swap_out_s"], "{:.2f}"), _f(r["total_s"], "{:.1f}"),
                 f"{r['overhead_vs_all'] * 100:+.0f}%", _mib(r["peak_accounted"]), _mib(r["peak_rss"]),
                 "yes" if r["within_budget"] else "NO"]
            )  # fmt: skip
    return rows


def _flops_rows(report: dict) -> list[list[str]]:
    rows = []
    for stage, sizes in report.get("flops", {}).items():
        for size, e in sizes.items():
            ops = ", ".join(
                f"{k} {v / 1e9:,.1f}" for k, v in sorted(e["by_op"].items(), key=lambda kv: -kv[1])
            )
            rows.append(
                [
                    stage,
                    f"{size}x{size}",
                    _f(e["total"] / 1e9, "{:,.1f}"),
                    ops,
                    "yes" if e["complete"] else f"no ({e['unknown_count']} nodes unknown)",
                ]
            )
    return rows


def _gflops(x: float | None) -> str:
    return _f(x and x / 1e9, "{:.0f}") or "-"


def _peak_text(peak: dict) -> str:
    """The measured ceilings of "% of peak" (fp32, and bf16 where measured) and how they were measured."""
    text = (
        f"Measured fp32 matmul peak: **{_gflops(peak['flops'])} GFLOP/s** "
        f"(numpy {_gflops(peak['numpy_flops'])}, "
        f"ONNX Runtime {_gflops(peak['ort_flops'])}, OpenVINO f32 {_gflops(peak.get('openvino_flops'))}; "
        f"n={peak['n']}; the larger of the measurements at start ({_gflops(peak.get('start_flops'))}) and "
        f"end ({_gflops(peak.get('end_flops'))}) of the run)."
    )
    if peak.get("bf16_flops"):
        text += (
            f" Measured bf16 matmul peak, the ceiling of the bf16 rows: **{_gflops(peak['bf16_flops'])} "
            f"GFLOP/s** (OpenVINO with INFERENCE_PRECISION_HINT bf16, constant second operand: "
            f"{_gflops(peak.get('openvino_bf16_flops'))}; torch.matmul of bf16 tensors: "
            f"{_gflops(peak.get('torch_bf16_flops'))}; same n; "
            f"start {_gflops(peak.get('start_bf16_flops'))}, "
            f"end {_gflops(peak.get('end_bf16_flops'))})."
        )
    elif "bf16_note" in peak:
        text += f" bf16 matmul peak: {peak.get('bf16_note') or 'not measured'}."
    return text


def _native_text(v: dict) -> str:
    return f"{'yes' if v['native'] else 'no'} ({v['why']})"


def _flags_text(m: dict) -> str:
    flags = ", ".join(m.get("cpu_features") or []) or "none of those listed"
    native = f"; native bf16: {_native_text(m['native_bf16'])}" if m.get("native_bf16") else ""
    return f"CPU flags: {flags}{native}."


def _bf16_goal_caveat(report: dict) -> list[str]:
    """Where the bf16 goals could not be judged: the reason, never a guess."""
    row = next((b for b in report["backends"] if b["key"] == "openvino-bf16"), None)
    if row is None or report.get("bf16_headlines"):
        return []
    if not row["available"]:
        why = f"the openvino-bf16 row is not available here ({row['reason']})"
    elif "error" in (row.get("result") or {}):
        why = f"the openvino-bf16 row failed ({row['result']['error']})"
    else:
        why = "the rows to compare with did not run"
    return [f"OpenVINO bf16 goals ({', '.join(f'{g}x {k}' for k, g in BF16_GOALS)}): not judged: {why}.", ""]


def render_markdown(report: dict) -> str:
    m, peak, cfg = report["machine"], report["peak"], report["config"]
    lines = [f"# inpaint-bench: {report['name']}", ""]
    lines += [
        f"{report['created']} on **{m['cpu']}**, {m['logical_cores']} cores, "
        f"{format_bytes(m['memory_total'])} RAM, GPU: {', '.join(g['name'] for g in m['gpus']) or 'none'}. "
        f"Load average at start {report['load_average_start']}, at end {report['load_average_end']}. "
        f"{'QUICK run (fewer runs and sizes). ' if cfg['quick'] else ''}"
        f"Pipeline `{cfg['pipeline']}` at {cfg['size']}x{cfg['size']}, batch 1, "
        + (
            f"warm-up {cfg['warmup']} (after one first run timed apart), {cfg['runs']} timed runs. "
            if cfg["runs"]
            else "the first run after loading is the only sample (no repeats). "
        )
        + _peak_text(peak),
        "",
        _flags_text(m),
        "",
    ]
    quick = " (quick run: first runs only; judge the goal on a full run)." if cfg["quick"] else "."
    at = f"end to end at {cfg['size']}x{cfg['size']}"
    for h in filter(None, [report.get("headline"), *report.get("bf16_headlines", [])]):
        test, base = h.get("test", "ONNX Runtime CPU fp32"), h.get("base", "PyTorch eager fp32")
        t, b = h.get("test_p50", h.get("ort_p50")), h.get("base_p50", h.get("torch_p50"))
        verdict = "meets" if h["met"] else "falls short of"
        lines += [
            f"**{test} vs {base}, {at}: {h['speedup']:.2f}x** ({_ms(t)} ms vs {_ms(b)} ms, same run); "
            f"this {verdict} the {h['goal']}x goal" + quick,
            "",
        ]
    lines += _bf16_goal_caveat(report)
    lines += ["## Latency, throughput, memory, share of peak", "", main_table(report), ""]
    lines += [
        "p50/p90: per-call latency over the timed runs (stage rows: that stage's calls inside the "
        "pipeline runs). peak MiB: stage rows, the memory the stage needs alone (resident growth at "
        "load + peak working memory above the level before its call); end-to-end rows, the process's "
        "peak resident memory with every stage loaded. GFLOP/s: dense FLOPs counted from the fp32 "
        "ONNX graph (Conv, ConvTranspose, MatMul, Gemm, Einsum) over p50; % of peak: against the "
        "matmul peak above of the row's precision (bf16 rows: the bf16 peak; others: fp32).",
        "",
    ]
    notes = [
        f"- {b['label']} {b['numeric']}: {b['note']}"
        for b in report["backends"]
        if b.get("note") and b["available"]
    ]
    if notes:
        lines += ["Notes:", *notes, ""]
    sections = [
        (
            "OpenVINO: first load (compile, write the cache) against later loads (from the cache)",
            [
                "backend",
                "precision",
                "stage",
                "first load s",
                "later load s",
                "first / later",
                "cache MiB",
                "later load from the cache",
            ],
            _cache_rows(report),
        ),
        (
            "One-time costs (seconds, MiB)",
            [
                "backend",
                "precision",
                "stage",
                "load s",
                "first run s",
                "load adds MiB",
                "working peak MiB",
                "runner footprint MiB",
                "device peak MiB",
            ],
            _one_time_rows(report),
        ),
        (
            "Scaling with image size (one stage alone, batch 1)",
            [
                "backend",
                "precision",
                "stage",
                "size",
                "MP",
                "p50 ms",
                "p90 ms",
                "s / MP",
                "GFLOP",
                "GFLOP/s",
                "% of peak",
                "peak MiB",
                "runs",
            ],
            _scaling_rows(report),
        ),
        (
            "Throughput against batch size (end to end)",
            [
                "backend",
                "precision",
                "pipeline",
                "batch",
                "p50 ms",
                "images/s",
                "vs batch 1",
                "peak MiB",
                "runs",
            ],  # fmt: skip
            _batch_rows(report),
        ),
        (
            "Memory budgets and engine swaps (the runtime's pool; swaps = evictions forced by the budget)",
            [
                "backend",
                "precision",
                "budget",
                "mode",
                "images",
                "loads",
                "reloads",
                "swaps",
                "load s",
                "swap-in s",
                "swap-out s",
                "total s",
                "vs all resident",
                "pool peak MiB",
                "process peak MiB",
                "within budget (RSS growth <= budget + slack)",
            ],
            _budget_rows(report),
        ),
        (
            "FLOPs per stage (counted from the fp32 ONNX graph, batch 1)",
            ["stage", "size", "GFLOP", "by op (GFLOP)", "complete"],
            _flops_rows(report),
        ),
    ]
    for title, header, rows in sections:
        if rows:
            lines += [f"## {title}", "", _table(header, rows), ""]
    if report.get("analysis"):
        lines += ["## Analysis", "", report["analysis"].strip(), ""]
    v = m["versions"]
    lines += [
        "## Machine",
        "",
        f"- CPU: {m['cpu']}; features: {', '.join(m['cpu_features']) or 'none listed'}"
        + (f"; native bf16: {_native_text(m['native_bf16'])}" if m.get("native_bf16") else ""),
        f"- cores: {m['logical_cores']} logical / {m['physical_cores']} physical; "
        f"memory {format_bytes(m['memory_total'])}; {m['os']}",
        f"- GPUs: {json.dumps(m['gpus']) if m['gpus'] else 'none'}",
        f"- versions: {', '.join(f'{k} {x}' for k, x in v.items())}",
        f"- trt-inpaint commit: {m.get('git_commit')}; engines: {cfg['engines']} "
        f"({'RANDOM-INIT weights' if report.get('random_init') else 'weights as in the manifest'})",
        f"- command: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict, out: Path, plot: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md"]
    atomic.write_text(paths[0], json.dumps(report, indent=1))
    atomic.write_text(paths[1], render_markdown(report))
    if plot:
        from trt_inpaint.bench.plot import plot_report

        png = out / "report.png"
        plot_report(report, png)
        paths.append(png)
    return paths
