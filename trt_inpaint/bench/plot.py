"""report.png: latency by backend and stage; memory over time with swaps marked; LaMa time per megapixel."""

from __future__ import annotations

from pathlib import Path

from trt_inpaint import atomic

MIB = 1024**2


def plot_report(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trt_inpaint.bench.report import main_pipeline_run

    measured = [b for b in report["backends"] if "error" not in (b.get("result") or {"error": 1})]
    ran = [b for b in measured if b["available"]]
    scaling = [b for b in measured if b["result"].get("scaling")]
    ncols = 3 if scaling else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 4.8))
    ax = axes[0]
    names, lefts = [], []
    colours = plt.get_cmap("tab10")
    stage_names: list[str] = []
    for i, b in enumerate(ran):
        run = main_pipeline_run(b["result"])
        if not run:
            continue
        names.append(f"{b['label']}\n{b['numeric']}")
        left = 0.0
        for st in run["stages"]:
            if st["stage"] not in stage_names:
                stage_names.append(st["stage"])
            c = colours(stage_names.index(st["stage"]) % 10)
            label = st["stage"] if i == 0 else None
            ax.barh(len(names) - 1, st["stats"]["p50"], left=left, color=c, label=label, edgecolor="white")
            left += st["stats"]["p50"]
        ax.text(left, len(names) - 1, f" {run['end_to_end']['stats']['p50']:.2f} s", va="center", fontsize=8)
        lefts.append(left)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("p50 latency, seconds (stages stacked)")
    ax.set_xlim(0, max(lefts, default=1) * 1.25)
    size = report["config"]["size"]
    ax.set_title(f"{report['config']['pipeline']} at {size}x{size}, batch 1")
    ax.legend(fontsize=7, loc="lower right")

    ax = axes[1]
    for i, b in enumerate(ran):
        mem = b["result"].get("memory", {})
        tl = mem.get("timeline", [])
        if not tl:
            continue
        c = colours(i % 10)
        ax.plot(
            [t for t, _ in tl], [v / MIB for _, v in tl], color=c, lw=1, label=f"{b['label']} {b['numeric']}"
        )
        for e in mem.get("events", []):
            if e["kind"] in ("swap-in", "swap-out"):
                y = _at(tl, e["t"]) / MIB
                ax.plot([e["t"]], [y], "^" if e["kind"] == "swap-in" else "v", color=c, ms=5, mfc="none")
            elif e["kind"] == "phase" and not e["label"].endswith("end"):
                ax.axvline(e["t"], color="grey", ls=":", lw=0.6)
                ax.text(e["t"], 1.0, " " + e["label"].split(":")[0], rotation=90, va="top", fontsize=6,
                        color="grey", transform=ax.get_xaxis_transform())  # fmt: skip
    ax.set_xlabel("seconds since the backend's process started")
    ax.set_ylabel("resident memory, MiB")
    ax.set_title("resident memory over time (^ swap in, v swap out)")
    ax.legend(fontsize=7)

    if scaling:
        ax = axes[2]
        for i, b in enumerate(scaling):
            pts = b["result"]["scaling"]
            ax.plot(
                [p["size"] for p in pts],
                [p["s_per_megapixel"] for p in pts],
                "o-",
                color=colours(i % 10),
                label=f"{b['label']} {b['numeric']}",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(
            [p["size"] for p in scaling[0]["result"]["scaling"]],
            [str(p["size"]) for p in scaling[0]["result"]["scaling"]],
        )
        ax.set_ylim(bottom=0)
        ax.set_xlabel("image side, pixels")
        ax.set_ylabel("seconds per megapixel (p50)")
        ax.set_title(f"{scaling[0]['result']['scaling'][0]['stage']} alone: time per megapixel")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"inpaint-bench {report['name']}: {report['machine']['cpu']}, {report['machine']['logical_cores']} "
        "cores",
        fontsize=10,
    )
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:  # the temporary name keeps .png: matplotlib picks the format by it
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _at(timeline: list, t: float) -> float:
    """The sampled value at or just before time ``t``."""
    best = timeline[0][1]
    for tt, v in timeline:
        if tt > t:
            break
        best = v
    return best
