"""The runtime's three steps apart: prepare -> run -> finish, across pickling, threads and processes."""

import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context

import cv2
import numpy as np
import pytest

from trt_inpaint.errors import BudgetError, EngineError, InputError, TrtInpaintError
from trt_inpaint.export.spec import PIPELINES, STAGES, Pipeline
from trt_inpaint.runtime import imaging
from trt_inpaint.runtime import prepare as prepare_step
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.runtime.finish import finish, write
from trt_inpaint.runtime.options import InpaintOptions
from trt_inpaint.samples import sample_pairs


def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


@pytest.fixture(scope="module")
def inp(engines):
    with Inpainter(engines=engines, backend="ort-cpu") as inp:
        yield inp


def test_pickled_between_every_step_equals_inpaint(inp, samples):
    pairs = [(img, mask) for img, mask, _ in samples[:3]]
    expected = [inp.inpaint(img, mask) for img, mask in pairs]
    items = [_roundtrip(inp.prepare(img, mask)) for img, mask in pairs]
    items = _roundtrip(items)
    inp.run(items)
    items = _roundtrip(items)
    for item, want in zip(items, expected, strict=True):
        assert item.error is None and item.result is not None
        got = _roundtrip(inp.finish(item))
        assert got.dtype == want.dtype and np.array_equal(got, want)


def _prepare_in_worker(args):
    image, mask, options = args
    return prepare_step.prepare_file(image, mask, options)


def _finish_in_worker(args):
    item, out = args
    write(item, out)
    return str(out)


def test_prepare_and_finish_in_other_processes(inp, engines, tmp_path):
    """Prepared in worker processes (no Inpainter there), run here, finished in workers: files equal
    the in-process composition's."""
    pairs = sample_pairs()[:3]
    ctx = get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        items = list(ex.map(_prepare_in_worker, [(i, m, inp.options) for i, m in pairs]))
        inp.run(items)
        outs = list(ex.map(_finish_in_worker, [(it, tmp_path / f"{k}.png") for k, it in enumerate(items)]))
    for (img, mask), out in zip(pairs, outs, strict=True):
        ref = inp.prepare_file(img, mask)
        inp.run([ref])
        want = inp.finish(ref)
        got = imaging.read_image(out).pixels
        assert got.shape == want.shape and np.array_equal(got, want)


def test_items_with_different_models_and_seeds_run_together(engines, samples):
    """One run over items asking for other pipelines and seeds: one load per stage, each result the
    same as when run alone."""
    (img, mask, _), (img2, mask2, _) = samples[0], samples[1]
    with Inpainter(engines=engines, backend="ort-cpu") as inp:
        asks = [dict(), dict(models="lama"), dict(models="mat", seed=3), dict(seed=3)]
        alone = []
        for kw in asks:
            it = inp.prepare(img, mask, **kw)
            inp.run([it])
            alone.append(inp.finish(it))
        loads_before = dict(inp.stats()["loads"])
    with Inpainter(engines=engines, backend="ort-cpu", memory_budget=None) as inp:
        items = [inp.prepare(img, mask, **kw) for kw in asks] + [inp.prepare(img2, mask2, models="lama")]
        inp.run(items)
        assert inp.stats()["loads"] == {s.value: 1 for s in STAGES}
        for it, want in zip(items, alone, strict=False):
            assert np.array_equal(inp.finish(it), want)
    assert loads_before  # the reference runs did load stages
    assert not np.array_equal(alone[0], alone[3]), "seed 3 must change the ensemble's result"


def test_every_pipeline_follows_the_stage_order():
    """run_items loads stages in spec.STAGES order: each pipeline's calls must be in that order."""
    order = list(STAGES)
    for p in Pipeline:
        idx = [order.index(c.stage) for c in PIPELINES[p]]
        assert idx == sorted(idx), p


def test_empty_mask_item_needs_no_run(inp, samples):
    img, mask, _ = samples[0]
    item = inp.prepare(img, np.zeros_like(mask))
    assert not item.needs_run and item.image is None
    inp.run([item])
    assert np.array_equal(inp.finish(item), img)


def test_per_item_overrides_are_checked(engines, samples):
    img, mask, _ = samples[0]
    with Inpainter(engines=engines, backend="ort-cpu", models="lama") as inp:
        with pytest.raises(InputError, match="models ensemble need stage"):
            inp.prepare(img, mask, models="ensemble")
        with pytest.raises(InputError, match="option backend cannot change per image"):
            inp.prepare(img, mask, backend="torch")
        foreign = prepare_step.prepare(img, mask, InpaintOptions(models="mat"))
        inp.run([foreign])
        assert isinstance(foreign.error, InputError) and "holds lama" in str(foreign.error)
        with pytest.raises(InputError, match="holds lama"):
            inp.finish(foreign)


def test_finish_before_run_is_an_error(inp, samples):
    img, mask, _ = samples[0]
    with pytest.raises(InputError, match="not been run"):
        inp.finish(inp.prepare(img, mask))


def test_runs_from_threads_are_serialised(inp, samples):
    pairs = [(img, mask) for img, mask, _ in samples[:4]]
    want = [inp.inpaint(img, mask) for img, mask in pairs]

    def one(pair):
        item = inp.prepare(*pair)
        inp.run([item])
        return inp.finish(item)

    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(one, pairs))
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_a_stage_that_cannot_load_fails_its_items_with_its_type(engines, tmp_path, samples):
    """A corrupt MAT: the items that need MAT get the EngineError (typed, naming the file once); an item
    that needs LaMa only is still inpainted."""
    bad = tmp_path / "engines"
    shutil.copytree(engines, bad)
    (bad / "mat.fp32.onnx").write_bytes(b"not a protobuf")
    img, mask, _ = samples[0]
    with Inpainter(engines=bad, backend="ort-cpu") as inp:
        items = [
            inp.prepare(img, mask),
            inp.prepare(img, mask, models="mat"),
            inp.prepare(img, mask, models="lama"),
        ]
        inp.run(items)
    for it in items[:2]:
        assert type(it.error) is EngineError
        assert str(it.error).count("mat.fp32.onnx") == 1 and "\n" not in str(it.error)
    assert items[2].error is None and not np.array_equal(finish(items[2]), img)


def test_errors_survive_pickling_with_type_message_and_path(tmp_path):
    for cls in (InputError, EngineError, BudgetError):
        e = cls("something is\nwrong", tmp_path / "x.png")
        back = _roundtrip(e)
        assert type(back) is cls and str(back) == str(e) and back.path == e.path
        assert back.exit_code == e.exit_code and isinstance(back, TrtInpaintError)


def test_runner_never_loads_behind_the_pool(engines):
    from trt_inpaint.export.spec import Stage, spec
    from trt_inpaint.runtime.backends.onnxruntime import OrtRunner

    runner = OrtRunner(Stage.LAMA, engines / "lama.fp32.onnx")
    feeds = {t.name: np.zeros(t.concrete(1, 64, 64), np.float32) for t in spec(Stage.LAMA).inputs}
    with pytest.raises(RuntimeError, match="not loaded"):
        runner.run(feeds)
    assert runner.load_count == 0
    with runner:
        assert runner.run(feeds)["output"].shape == (1, 3, 64, 64)


def test_backend_failures_become_engine_errors(engines):
    from trt_inpaint.export.spec import Stage
    from trt_inpaint.runtime.backends.onnxruntime import OrtRunner

    with OrtRunner(Stage.LAMA, engines / "lama.fp32.onnx") as runner:
        with pytest.raises(EngineError, match="stage lama failed on ort-cpu"):
            runner.run(
                {"image": np.zeros((1, 3, 8, 8), np.float32), "mask": np.zeros((1, 2, 8, 8), np.float32)}
            )


def test_a_file_is_decoded_once(engines, tmp_path):
    """Inputs replaced on disk while the stages run: the outputs still composite onto the pixels that
    were read (today's bug: a second read at write time)."""
    src = tmp_path / "in"
    src.mkdir()
    pairs = sample_pairs()[:2]
    originals = {}
    for img, mask in pairs:
        shutil.copy(img, src / img.name)
        shutil.copy(mask, src / mask.name)
        originals[img.name] = cv2.imread(str(img), cv2.IMREAD_UNCHANGED)
    triples = [(src / i.name, src / m.name, tmp_path / f"{i.stem}.png") for i, m in pairs]
    swapped = []

    def progress(phase, n):
        if phase != "read" and not swapped:  # the stages have started: replace every input
            for img, _ in pairs:
                grey = np.full_like(originals[img.name], 7)
                cv2.imwrite(str(src / img.name), grey)
            swapped.append(True)

    with Inpainter(engines=engines, backend="ort-cpu", models="lama") as inp:
        report = inp.inpaint_files(triples, progress)
    assert swapped and not report.failed
    for (img, mask), (_, _, out) in zip(pairs, triples, strict=True):
        hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
        got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        ref = cv2.imdecode(np.frombuffer(img.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(got[~hole], ref[~hole]), "known pixels must come from the first read"


def test_folder_run_spills_decoded_inputs_and_matches(engines, tmp_path):
    """A host cache too small for one decoded image: everything waits in the spill folder, same files."""
    pairs = sample_pairs()[:3]
    outs = {}
    for cap in (None, 1024):
        d = tmp_path / f"out{cap}"
        d.mkdir()
        with Inpainter(engines=engines, backend="ort-cpu", models="lama", host_cache=cap) as inp:
            report = inp.inpaint_files([(i, m, d / f"{i.stem}.png") for i, m in pairs])
        assert not report.failed
        assert (report.spilled > 0) == (cap is not None)
        outs[cap] = [(d / f"{i.stem}.png").read_bytes() for i, _ in pairs]
    assert outs[None] == outs[1024]
