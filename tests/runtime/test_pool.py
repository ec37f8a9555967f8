"""Engine swapping under a memory budget with ONNX Runtime CPU stages (stand-ins with ~23 MB of weights)."""

import json

import cv2
import numpy as np
import onnx
import pytest

from tests.standins import standin_model, write_standins
from trt_inpaint.errors import BudgetError
from trt_inpaint.export.spec import Stage
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.runtime.store import IntermediateStore


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    return write_standins(tmp_path_factory.mktemp("heavy"), width=1_000_000)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, samples):
    """Three (image, mask) PNG pairs and the unlimited-budget reference results for them."""
    d = tmp_path_factory.mktemp("folder")
    triples = []
    for img, mask, name in samples[:3]:
        cv2.imwrite(str(d / f"{name}.png"), img[..., ::-1])
        cv2.imwrite(str(d / f"{name}.mask.png"), mask)
        triples.append((d / f"{name}.png", d / f"{name}.mask.png", name))
    return triples


def _run(heavy, folder, out_dir, budget, **kw):
    """One folder run. Footprints go through one cache file, as the CLI's do: a stage is accounted at the
    largest footprint measured for it (resident growth at a load varies with what the allocator reuses)."""
    out_dir.mkdir()
    kw.setdefault("footprint_cache", heavy / "footprints.json")
    with Inpainter(engines=heavy, backend="ort-cpu", memory_budget=budget, **kw) as inp:
        report = inp.inpaint_files([(i, m, out_dir / f"{n}.png") for i, m, n in folder])
        assert not report.failed, report.failed
        pool = inp.pool
    outs = [cv2.imread(str(out_dir / f"{n}.png"), cv2.IMREAD_UNCHANGED) for _, _, n in folder]
    return pool, outs


@pytest.fixture(scope="module")
def unlimited(heavy, folder, tmp_path_factory):
    return _run(heavy, folder, tmp_path_factory.mktemp("u") / "out", None)


def test_budget_below_total_swaps_within_budget_and_changes_nothing(heavy, folder, unlimited, tmp_path):
    ref_pool, ref = unlimited
    fps = ref_pool.stats.footprints
    total, largest = sum(fps.values()), sorted(fps.values(), reverse=True)
    assert ref_pool.stats.evictions == 0 and ref_pool.stats.peak_used == total
    # one stage, or any two, at a time (from the measured footprints, which differ from stage to stage and
    # run to run: a multiple of the largest alone could hold all five when one load measured high)
    for budget in (int(largest[0] * 1.3), int((largest[0] + largest[1]) * 1.05)):
        assert budget < total, (budget, fps)
        pool, outs = _run(heavy, folder, tmp_path / str(budget), budget)
        assert pool.stats.loads == {s: 1 for s in Stage}, "stage-major: one load per stage for the folder"
        assert pool.stats.evictions > 0
        assert all(e.used <= budget for e in pool.events), [
            (e.kind, e.stage.value, e.used) for e in pool.events
        ]
        assert pool.stats.peak_used <= budget
        for a, b in zip(outs, ref, strict=True):
            assert np.array_equal(a, b), "results differ from the unlimited-budget run"


def test_budget_that_holds_everything_swaps_nothing(heavy, folder, unlimited, tmp_path):
    total = sum(unlimited[0].stats.footprints.values())
    pool, _ = _run(heavy, folder, tmp_path / "all", int(total * 1.5))
    assert pool.stats.evictions == 0 and pool.stats.loads == {s: 1 for s in Stage}


def test_stage_bigger_than_budget_fails_before_any_work(heavy):
    with pytest.raises(BudgetError, match=r"stage lama needs .* budget is 10.0 MiB") as err:
        Inpainter(engines=heavy, backend="ort-cpu", memory_budget="10MiB")
    assert "\n" not in str(err.value)


RESIDENT = 96 << 20


@pytest.fixture(scope="module")
def resident(tmp_path_factory):
    """A LaMa stand-in of a few KB that holds 96 MiB once ONNX Runtime has loaded it."""
    folder = write_standins(tmp_path_factory.mktemp("resident"), width=100, stages=(Stage.LAMA,))
    onnx.save(standin_model(Stage.LAMA, 100, resident=RESIDENT), str(folder / "lama.fp32.onnx"))
    return folder


_ACQUIRE_IN_A_FRESH_PROCESS = """
import json, sys
from trt_inpaint.export.spec import Stage
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.runtime.gpu import process_rss
with Inpainter(engines=sys.argv[1], backend="ort-cpu", models="lama", footprint_cache=sys.argv[2]) as inp:
    estimate = inp.pool.footprint(Stage.LAMA)
    before = process_rss()
    inp.pool.acquire(Stage.LAMA)
    held = process_rss() - before
    measured = inp.pool.stats.footprints[Stage.LAMA]
print(json.dumps({"estimate": estimate, "held": held, "measured": measured}))
"""


def test_footprints_measured_before_make_the_check_exact(resident, tmp_path):
    """Without history the check uses the file size (a lower bound); with it, the measured footprint,
    which follows the memory the load holds (measured apart from the pool, in a fresh process where no
    memory freed by earlier tests can serve the load), not the file size."""
    import subprocess
    import sys

    cache = tmp_path / "footprints.json"
    run = subprocess.run(
        [sys.executable, "-c", _ACQUIRE_IN_A_FRESH_PROCESS, str(resident), str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(run.stdout.strip().splitlines()[-1])
    estimate, measured = got["estimate"], got["measured"]
    assert estimate == (resident / "lama.fp32.onnx").stat().st_size < 100_000
    assert got["held"] > 0.9 * RESIDENT
    assert 0.9 * RESIDENT <= measured <= got["held"] + (16 << 20), got
    assert list(json.loads(cache.read_text()).values()) == [measured]
    Inpainter(engines=resident, backend="ort-cpu", models="lama", memory_budget=estimate).close()
    with pytest.raises(BudgetError, match=r"stage lama needs .*\(measured\)"):
        Inpainter(
            engines=resident,
            backend="ort-cpu",
            models="lama",
            memory_budget=measured - 1,
            footprint_cache=cache,
        )


def test_intermediates_spill_to_disk_beyond_the_cap(heavy, folder, unlimited, tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    (tmp_path / "out").mkdir()
    cap = 5 * 2**20
    with Inpainter(engines=heavy, backend="ort-cpu", host_cache=cap, spill_dir=spill) as inp:
        report = inp.inpaint_files([(i, m, tmp_path / "out" / f"{n}.png") for i, m, n in folder])
    assert not report.failed and report.spilled > 0 and report.peak_host_bytes <= cap
    assert list(spill.iterdir()) == [], "the spill folder was not cleaned up"
    for (_, _, n), ref in zip(folder, unlimited[1], strict=True):
        assert np.array_equal(cv2.imread(str(tmp_path / "out" / f"{n}.png"), cv2.IMREAD_UNCHANGED), ref)


def test_store_roundtrip(tmp_path):
    with IntermediateStore(cap=100, spill_dir=tmp_path) as store:
        small, big = np.arange(5, dtype=np.float32), np.arange(1000, dtype=np.float32)
        store.put("a", small)
        store.put("b", big)
        assert store.spilled == 1 and store.in_memory == small.nbytes
        assert np.array_equal(store.get("b"), big) and np.array_equal(store.get("a"), small)
        store.drop("b")
        assert "b" not in store


def test_a_reload_that_measures_less_keeps_the_largest_footprint(heavy):
    """Resident growth at a reload can miss memory the allocator kept from the last unload; the pool keeps
    the largest footprint it has seen for the stage, so a later budget is not overcommitted. The real ONNX
    Runtime runner loads; only its measured footprint is replaced, as a reload's RSS growth can be."""
    from trt_inpaint.export.spec import Precision
    from trt_inpaint.runtime.backends.onnxruntime import OrtRunner
    from trt_inpaint.runtime.engines import EngineDir
    from trt_inpaint.runtime.pool import EnginePool

    measured = iter([300 << 20, 1 << 20])  # first load, then a reload that "sees" almost nothing

    class Reloading(OrtRunner):
        def _load(self) -> None:
            super()._load()
            self.footprint = next(measured)

    ed = EngineDir(heavy)
    runners = {Stage.LAMA: Reloading(Stage.LAMA, ed.onnx(Stage.LAMA, Precision.FP32))}
    pool = EnginePool(runners, budget=400 << 20)
    pool.acquire(Stage.LAMA)
    pool.release(Stage.LAMA)
    pool.acquire(Stage.LAMA)  # reload: measured 1 MiB, accounted 300 MiB
    assert pool.stats.footprints[Stage.LAMA] == 300 << 20 and pool.used == 300 << 20
    pool.close()


def test_a_footprint_that_grows_while_running_is_accounted(heavy):
    """A runner whose footprint grows at run time (TensorRT sizes activations per shape): the pool takes
    the larger size after the run and evicts to stay within the budget."""
    from trt_inpaint.runtime.backends.onnxruntime import OrtRunner
    from trt_inpaint.runtime.engines import EngineDir
    from trt_inpaint.runtime.pool import EnginePool

    class Growing(OrtRunner):
        """A real ONNX Runtime stage with a set footprint (resident growth at a load varies), which grows
        by 80 % at its first run."""

        def _load(self):
            super()._load()
            self.footprint = 100 << 20

        def _run(self, feeds):
            self.footprint = 180 << 20
            return super()._run(feeds)

    d = EngineDir(heavy)
    runners = {s: Growing(s, d.onnx(s, "fp32")) for s in (Stage.LAMA, Stage.LAMA_DENOISER)}
    pool = EnginePool(runners, 250 << 20)
    feeds = {"image": np.zeros((1, 3, 64, 64), np.float32), "mask": np.zeros((1, 1, 64, 64), np.float32)}
    pool.acquire(Stage.LAMA)
    pool.acquire(Stage.LAMA_DENOISER)
    assert pool.resident == [Stage.LAMA, Stage.LAMA_DENOISER] and pool.stats.evictions == 0
    runners[Stage.LAMA_DENOISER].run(feeds)
    pool.refresh(Stage.LAMA_DENOISER)
    assert pool.resident == [Stage.LAMA_DENOISER] and pool.stats.evictions == 1
    assert pool.used <= pool.budget and pool.events[-1].kind == "grow"


def test_events_keep_the_newest_within_a_bound_and_stats_count_all(heavy):
    """A server that swaps on every batch must not grow the pool's event record without end: the pool keeps
    the newest ``events_kept`` events; its stats still count every load and eviction. Real ONNX Runtime
    runners (the stand-ins) with a set footprint of 100 MiB each (resident growth at a load varies from one
    machine and moment to the next: measured, two stand-ins once fitted a budget meant for one), and a budget
    of 150 MiB that holds one stage at a time."""
    from trt_inpaint.runtime.backends.onnxruntime import OrtRunner
    from trt_inpaint.runtime.engines import EngineDir
    from trt_inpaint.runtime.pool import EVENTS_KEPT, EnginePool

    class Fixed(OrtRunner):
        def estimate_footprint(self) -> int:
            return 100 << 20

        def _load(self):
            super()._load()
            self.footprint = 100 << 20

    d = EngineDir(heavy)
    stages = (Stage.LAMA, Stage.LAMA_DENOISER)
    pool = EnginePool({s: Fixed(s, d.onnx(s, "fp32")) for s in stages}, 150 << 20, events_kept=5)
    assert EnginePool({}, None).events.maxlen == EVENTS_KEPT
    order = [stages[k % 2] for k in range(8)]
    for s in order:
        pool.acquire(s)
        assert pool.resident == [s] and pool.runners[s].is_loaded
    pool.close()
    # 8 loads and 7 evictions happened; the last five events are the newest, in order
    assert sum(pool.stats.loads.values()) == 8 and pool.stats.evictions == 7
    assert [(e.kind, e.stage) for e in pool.events] == [
        ("load", order[5]), ("evict", order[5]), ("load", order[6]), ("evict", order[6]), ("load", order[7])
    ]  # fmt: skip
