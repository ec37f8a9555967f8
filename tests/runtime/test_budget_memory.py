"""The memory budget against the process's real resident memory, not the pool's own accounting.

Each run is a fresh interpreter: the kernel's high-water mark (VmHWM) is reset after start-up, a budgeted
folder run goes through all five stand-in stages (weights of 50-130 MB each), and the peak minus the baseline
is compared with the budget. The budget bounds what the resident stages hold; loading a stage needs about
its file's size more for a moment (ONNX Runtime parses the file next to the tensors it builds), and the run
needs working memory: that is the stated slack.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.standins import write_standins
from trt_inpaint.export.spec import Stage

WIDTHS = {Stage.LAMA: 4_000_000, Stage.LAMA_DENOISER: 2_000_000, Stage.MAT: 5_500_000,
          Stage.COMBINER: 2_500_000, Stage.FINAL_DENOISER: 2_000_000}  # fmt: skip
WORKING_SLACK = 128 * 2**20  # intermediates, decoded images, ONNX Runtime arenas (measured here: ~50 MiB)

RUN = """
import json, sys
from pathlib import Path
from trt_inpaint.bench.memory import hwm_bytes, reset_hwm, rss_bytes
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.samples import sample_pairs
budget = None if sys.argv[1] == "none" else int(sys.argv[1])
out = Path(sys.argv[3])
out.mkdir()
pairs = [(i, m, out / f"{i.stem}.png") for i, m in sample_pairs()]
with Inpainter(engines=sys.argv[2], backend="ort-cpu", memory_budget=budget, threads=1) as inp:
    import onnxruntime  # imported before the baseline
    assert reset_hwm(), "this kernel cannot reset VmHWM"
    base = rss_bytes()
    report = inp.inpaint_files(pairs)
    peak = hwm_bytes()
    stats = inp.stats()
print(json.dumps({"delta": peak - base, "failed": len(report.failed), "loads": stats["loads"],
                  "swaps": stats["swaps"], "footprints": stats["footprints"]}))
"""


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    return write_standins(tmp_path_factory.mktemp("mem-engines"), width=WIDTHS)


def _run(engines, budget, out) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", RUN, "none" if budget is None else str(budget), str(engines), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_peak_resident_memory_stays_within_the_budget(heavy, tmp_path):
    import cv2

    largest_file = max(p.stat().st_size for p in heavy.glob("*.onnx"))
    free = _run(heavy, None, tmp_path / "free")
    fps = free["footprints"]
    budget = int(max(fps.values()) * 1.3)  # one stage at a time
    slack = largest_file + WORKING_SLACK
    # the check can fail: without a budget the same run holds every stage at once
    assert free["delta"] > budget + slack, (free, budget, slack)
    tight = _run(heavy, budget, tmp_path / "tight")
    assert tight["failed"] == 0 and tight["swaps"] > 0
    assert tight["loads"] == {s.value: 1 for s in Stage}, "stage-major: one load per stage under eviction"
    assert tight["delta"] <= budget + slack, (
        f"peak {tight['delta'] / 2**20:.0f} MiB above the baseline; budget {budget / 2**20:.0f} MiB "
        f"+ slack {slack / 2**20:.0f} MiB"
    )
    for f in sorted((tmp_path / "free").iterdir()):
        a = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "tight" / f.name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(a, b), f"{f.name}: the budgeted run's output differs"
