"""The Inpainter on numpy arrays with ONNX Runtime CPU stand-in stages and the shipped photos."""

import numpy as np
import pytest

from tests.standins import write_standins
from trt_inpaint.errors import EngineError, InputError
from trt_inpaint.runtime.api import Inpainter


@pytest.fixture(scope="module")
def ensemble(engines):
    with Inpainter(engines=engines, backend="ort-cpu") as inp:
        yield inp


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    """Stand-ins with ~24 MB of weights per stage: footprints well above ONNX Runtime's own start-up."""
    return write_standins(tmp_path_factory.mktemp("heavy"), width=1_000_000)


@pytest.fixture(scope="module")
def one_stage_budget(heavy, samples):
    """A budget that holds one stage at a time (from footprints measured in an unlimited run)."""
    with Inpainter(
        engines=heavy, backend="ort-cpu", memory_budget=None, footprint_cache=heavy / "footprints.json"
    ) as inp:
        inp.inpaint(*samples[0][:2])
        fps = inp.stats()["footprints"]
    return int(max(fps.values()) * 1.3)


@pytest.mark.parametrize("strategy", ["crop", "resize", "original"])
def test_real_photos_change_only_masked_pixels(heavy, samples, strategy, one_stage_budget):
    with Inpainter(
        engines=heavy,
        backend="ort-cpu",
        hd_strategy=strategy,
        hd_crop_margin=32,
        memory_budget=one_stage_budget,
    ) as inp:
        outs = inp.inpaint_many([(img, mask) for img, mask, _ in samples])
        stats = inp.stats()
        # stage-major under a budget that evicts: one load per stage (image-major order would reload)
        assert stats["swaps"] > 0, stats
        assert stats["loads"] == {s.value: 1 for s in inp.stages}
    for (img, mask, name), out in zip(samples, outs, strict=True):
        hole = mask > 127
        assert out.shape == img.shape and out.dtype == img.dtype, name
        assert np.array_equal(out[~hole], img[~hole]), (
            f"{name}: a pixel outside the mask changed ({strategy})"
        )
        assert (out[hole] != img[hole]).any(axis=-1).mean() > 0.5, f"{name}: the hole was not filled"


def test_lama_alone_at_original_size(engines, samples):
    img, mask, _ = samples[2]  # 451x300: not a multiple of 8
    with Inpainter(engines=engines, backend="ort-cpu", models="lama", hd_strategy="original") as inp:
        out = inp.inpaint(img, mask)
        assert list(inp.stats()["loads"]) == ["lama"]
    hole = mask > 127
    assert np.array_equal(out[~hole], img[~hole]) and not np.array_equal(out[hole], img[hole])


def test_sixteen_bit_rgba_keeps_alpha_and_depth(ensemble, samples):
    img, mask, _ = samples[0]
    rgba = np.concatenate([img.astype(np.uint16) * 257, np.arange(img[..., :1].size, dtype=np.uint16).reshape(
        img.shape[:2] + (1,))], axis=2)  # fmt: skip
    out = ensemble.inpaint(rgba, mask)
    hole = mask > 127
    assert out.dtype == np.uint16 and out.shape == rgba.shape
    assert np.array_equal(out[..., 3], rgba[..., 3])
    assert np.array_equal(out[~hole], rgba[~hole])
    assert not np.array_equal(out[hole][:, :3], rgba[hole][:, :3])
    # 16 bits all the way: an 8-bit result scaled up would give multiples of 257 only
    assert (out[hole][:, :3] % 257 != 0).mean() > 0.9


def test_grey_image(ensemble, samples):
    img, mask, _ = samples[1]
    grey = img[..., 1].copy()
    out = ensemble.inpaint(grey, mask)
    hole = mask > 127
    assert out.shape == grey.shape and np.array_equal(out[~hole], grey[~hole])
    assert not np.array_equal(out[hole], grey[hole])


def test_empty_mask_returns_input_without_running(engines, samples):
    img, mask, _ = samples[0]
    with Inpainter(engines=engines, backend="ort-cpu") as inp:
        out = inp.inpaint(img, np.full_like(mask, 127))  # 127 is not a hole
        assert np.array_equal(out, img) and out is not img
        assert sum(inp.stats()["loads"].values()) == 0


def test_full_mask_still_runs(ensemble, samples):
    img, mask, _ = samples[3]
    out = ensemble.inpaint(img, np.full_like(mask, 255))
    assert (out != img).any(axis=-1).mean() > 0.9


def test_seed_drives_mat_noise(engines, samples):
    img, mask, _ = samples[4]
    runs = []
    for seed in (1, 1, 2):
        with Inpainter(engines=engines, backend="ort-cpu", models="mat", seed=seed) as inp:
            runs.append(inp.inpaint(img, mask))
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_mask_size_mismatch(ensemble, samples):
    img, mask, _ = samples[0]
    with pytest.raises(InputError, match="resize-mask"):
        ensemble.inpaint(img, mask[:-3])


def test_resize_mask_option(engines, samples):
    img, mask, _ = samples[0]
    with Inpainter(engines=engines, backend="ort-cpu", models="lama", resize_mask=True) as inp:
        out = inp.inpaint(img, mask[::2, ::2])
    assert out.shape == img.shape and not np.array_equal(out, img)


def test_no_engines_says_how_to_build_them(tmp_path):
    with pytest.raises(EngineError, match=r"export-engines --out ") as err:
        Inpainter(engines=tmp_path / "nothing-here")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError, match=r"export-engines --out .*empty"):
        Inpainter(engines=tmp_path / "empty")


def test_corrupt_onnx_is_an_engine_error(tmp_path, engines, samples):
    import shutil

    bad = tmp_path / "engines"
    shutil.copytree(engines, bad)
    (bad / "lama.fp32.onnx").write_bytes(b"definitely not a protobuf model")
    img, mask, _ = samples[0]
    with Inpainter(engines=bad, backend="ort-cpu", models="lama") as inp:
        with pytest.raises(EngineError, match="lama.fp32.onnx: cannot load") as err:
            inp.inpaint(img, mask)
    assert "\n" not in str(err.value)


def test_bad_options_are_input_errors(engines):
    with pytest.raises(InputError, match="not a size"):
        Inpainter(engines=engines, memory_budget="lots")
    with pytest.raises(InputError, match="zoom"):
        Inpainter(engines=engines, hd_strategy="zoom")
