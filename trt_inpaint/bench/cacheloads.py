"""OpenVINO rows: what the first load of a stage costs (compile, write the compiled-model cache) against
every later one (read the cache), measured with an empty cache folder of the measurement's own, so the
engines' cache (and the user's) is neither used nor changed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from trt_inpaint.bench.timing import clock
from trt_inpaint.export.spec import Stage


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bench_cache_loads(factory, stages: list[Stage], progress=lambda msg: None) -> list[dict]:
    """Per stage: two loads of a fresh runner from ``factory`` (an OpenVINO runner: it has ``cache_root``
    and ``loaded_from_cache``), first into an empty cache, then from it; seconds, whether each came from
    the cache, and the cache's size on disk."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="inpaint-bench-openvino-cache-") as tmp:
        for stage in stages:
            root = Path(tmp) / stage.value
            row: dict = {"stage": stage.value}
            for which in ("first", "later"):
                progress(f"cache: {which} load of {stage.value}")
                runner = factory(stage)
                runner.cache_root = root
                t0 = clock()
                runner.load()
                row[f"{which}_load_s"] = clock() - t0
                row[f"{which}_from_cache"] = runner.loaded_from_cache
                runner.unload()
            row["cache_bytes"] = _bytes(root)
            rows.append(row)
    return rows
