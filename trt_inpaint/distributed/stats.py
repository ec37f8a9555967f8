"""The actors' Inpainter stats as one record shaped like ``Inpainter.stats()`` (the summary and --json read
it): loads and swaps summed over actors (a restarted actor counts anew), the largest pool peak and
footprint per stage, the backend and precision the actors chose."""

from __future__ import annotations

from collections import Counter

from trt_inpaint.runtime.options import InpaintOptions


def merge_stats(workers: list[tuple[str, dict]], options: InpaintOptions) -> dict:
    """``workers``: (actor id, that actor's cumulative stats at some batch), in any order."""
    per_actor: dict[str, dict] = {}
    for wid, st in workers:  # each actor's counters only grow: keep its largest
        old = per_actor.get(wid)
        if old is None or (sum(st["loads"].values()), st["swaps"]) >= (
            sum(old["loads"].values()),
            old["swaps"],
        ):
            per_actor[wid] = st
    loads: Counter = Counter()
    footprints: dict[str, int] = {}
    first = next(iter(per_actor.values()), {})
    swaps, peak = 0, 0
    for st in per_actor.values():
        loads.update(st["loads"])
        swaps += st["swaps"]
        peak = max(peak, st["peak_pool_bytes"])
        for s, n in st["footprints"].items():
            footprints[s] = max(footprints.get(s, 0), n)
    merged = {k: first.get(k) for k in ("backend", "precision", "selection")}
    merged |= {
        "models": options.models.value,
        "budget_bytes": options.memory_budget,
        "loads": dict(loads),
        "swaps": swaps,
        "peak_pool_bytes": peak,
        "footprints": footprints,
    }
    return merged
