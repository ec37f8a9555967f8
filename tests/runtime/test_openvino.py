"""The OpenVINO backend on stand-in stages: selection and its reasons, the native-bf16 decision on real CPU
flag lists, the precision OpenVINO really compiles for, the compiled-model cache, footprints and errors.

Both kinds of CPU are checked on any machine: the branch of the CPU the tests run on runs for real (its
selection, the compiled precision, the summary text); the other branch runs through the pure decision
function on real /proc/cpuinfo flag lists (tests/fixtures/cpuinfo: this project's Xeon with AMX, a Zen 4
with AVX512-BF16 and a Zen 3 with AVX2 only), and, on a CPU with native bf16, through a whole selection and
fp32 run with the Zen 3's flags in place of this CPU's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.cpu_facts import native_bf16_here
from tests.standins import standin_model, write_standins
from trt_inpaint.errors import BackendUnavailable, EngineError, InputError
from trt_inpaint.export.fp16_check import compare, hole_masks
from trt_inpaint.export.spec import Precision, Role, Stage, onnx_filename, random_feeds, spec
from trt_inpaint.runtime import cpu
from trt_inpaint.runtime.api import Inpainter
from trt_inpaint.runtime.backends import openvino as ovb
from trt_inpaint.runtime.backends.base import Backend
from trt_inpaint.runtime.backends.onnxruntime import OrtRunner
from trt_inpaint.runtime.backends.openvino import OpenVinoDevice, OpenVinoRunner, cache_root
from trt_inpaint.runtime.backends.registry import AUTO_ORDER, select
from trt_inpaint.runtime.cli import main
from trt_inpaint.runtime.engines import EngineDir
from trt_inpaint.runtime.footprints import runner_key
from trt_inpaint.runtime.options import InpaintOptions

CPUINFO = Path(__file__).parents[1] / "fixtures" / "cpuinfo"
XEON, ZEN4, ZEN3 = CPUINFO / "xeon-amx.txt", CPUINFO / "zen4-epyc.txt", CPUINFO / "zen3-epyc-7r13.txt"
# OPTIMIZATION_CAPABILITIES of the CPU as OpenVINO 2026.4.1 reported them on that Xeon (AMX, AVX512-BF16/FP16)
XEON_CAPS = ("BF16", "WINOGRAD", "FP32", "FP16", "INT8", "BIN", "EXPORT_IMPORT")


@pytest.fixture
def flags_of(monkeypatch):
    """Put the flags of a cpuinfo file in place of this CPU's (the verdict is recomputed, then restored)."""

    def use(path: Path) -> None:
        monkeypatch.setattr(cpu, "cpu_flags", lambda: cpu.read_flags(path))
        ovb.cpu_bf16.cache_clear()

    yield use
    ovb.cpu_bf16.cache_clear()


def _feeds(stage: Stage = Stage.LAMA, side: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Random images, a mask with a 40 % hole, and the spec's noise (MAT: 512x512)."""
    s = spec(stage)
    side = s.fixed_size or side
    rng = np.random.default_rng(seed)
    feeds = random_feeds(stage, 1, seed)
    for t in s.inputs:
        if t.role is Role.IMAGE:
            feeds[t.name] = rng.random((1, 3, side, side), dtype=np.float32)
        elif t.role is Role.MASK:
            feeds[t.name] = (rng.random((1, 1, side, side)) < 0.4).astype(np.float32)
    return feeds


# ---- the decision -------------------------------------------------------------------------------------


def test_flags_are_read_from_cpuinfo_files(tmp_path):
    xeon, zen3 = cpu.read_flags(XEON), cpu.read_flags(ZEN3)
    assert {"avx512_bf16", "amx_bf16", "amx_tile"} <= xeon and "avx2" in zen3
    assert not {"avx512_bf16", "amx_bf16", "avx512f"} & zen3
    assert cpu.read_flags(tmp_path / "none") is None
    (tmp_path / "noflags").write_text("processor\t: 0\nmodel name\t: x\n")
    assert cpu.read_flags(tmp_path / "noflags") is None


@pytest.mark.parametrize(
    ("path", "native", "found"),
    [(XEON, True, "avx512_bf16, amx_bf16"), (ZEN4, True, "avx512_bf16"), (ZEN3, False, None)],
)
def test_native_bf16_decision_on_real_flag_lists(path, native, found):
    flags = cpu.read_flags(path)
    alone = cpu.native_bf16(flags)
    assert alone.native is native
    if native:
        assert alone.why == f"{found} in /proc/cpuinfo"
        with_ov = cpu.native_bf16(flags, XEON_CAPS)
        assert with_ov.native and "OpenVINO lists BF16" in with_ov.why
        # OpenVINO not listing BF16 (it would not use it): not native, and said so
        without = cpu.native_bf16(flags, [c for c in XEON_CAPS if c != "BF16"])
        assert not without.native and "does not list BF16" in without.why
    else:
        assert alone.why == "no avx512_bf16 or amx_bf16 in /proc/cpuinfo"
        # a capability without the flags behind it is not native bf16
        assert not cpu.native_bf16(flags, XEON_CAPS).native


def test_without_cpuinfo_openvino_decides():
    assert cpu.native_bf16(None, XEON_CAPS).native
    assert not cpu.native_bf16(None, ("FP32", "INT8")).native
    unknown = cpu.native_bf16(None)
    assert not unknown.native and "unknown" in unknown.why


@pytest.mark.parametrize("path", [XEON, ZEN3])
def test_precision_problem_and_reason_for_each_cpu_kind(path):
    """The texts the log and --json summary carry, for both kinds of CPU (whichever this one is)."""
    verdict = cpu.native_bf16(cpu.read_flags(path), XEON_CAPS)
    problem = ovb.precision_problem(Precision.BF16, OpenVinoDevice.CPU, bf16=verdict)
    default = Precision.BF16 if verdict.native else Precision.FP32
    reason = ovb.precision_reason(default, OpenVinoDevice.CPU, asked=False, bf16=verdict)
    assert ovb.precision_problem(Precision.FP32, OpenVinoDevice.CPU, bf16=verdict) is None
    if verdict.native:
        assert problem is None
        assert reason.startswith("this CPU has native bf16 (avx512_bf16, amx_bf16 in /proc/cpuinfo")
        assert "--precision fp32" in reason
    else:
        assert problem.startswith("bf16 is not native on this CPU (no avx512_bf16 or amx_bf16")
        assert reason.startswith("no native bf16 here (") and reason.endswith("so bf16 is not used")


def test_fp16_is_for_the_gpu_device_only():
    assert "runs fp32 or bf16, not fp16" in ovb.precision_problem(Precision.FP16, OpenVinoDevice.CPU)
    assert ovb.precision_problem(Precision.FP16, OpenVinoDevice.GPU, caps=("FP32", "FP16")) is None
    assert "does not list FP16" in ovb.precision_problem(Precision.FP16, OpenVinoDevice.GPU, caps=("FP32",))
    assert "not bf16" in ovb.precision_problem(Precision.BF16, OpenVinoDevice.GPU, caps=("FP16",))
    reason = ovb.precision_reason(Precision.FP16, OpenVinoDevice.GPU, asked=False)
    assert reason == "the first of fp16, fp32 that the GPU device lists"


# ---- this CPU, for real -------------------------------------------------------------------------------


def test_this_cpu_gets_its_precision_and_openvino_computes_in_it(engines, samples, capsys, tmp_path):
    """Default precision: bf16 where this CPU has it natively, else fp32; the compiled model reports it,
    and the log and the --json summary say which and why."""
    img, mask, _ = samples[0]
    native = native_bf16_here()
    with Inpainter(engines=engines, backend="openvino", models="lama") as inp:
        out = inp.inpaint(img, mask)
        stats = inp.stats()
        compiled = inp.pool.runners[Stage.LAMA].compiled_precision
    assert out.shape == img.shape and not np.array_equal(out[mask > 127], img[mask > 127])
    if native:
        assert (stats["precision"], compiled) == ("bf16", "bf16")
        assert "native bf16" in stats["selection"] and "--precision fp32" in stats["selection"]
    else:
        assert (stats["precision"], compiled) == ("fp32", "f32")
        assert "no native bf16 here" in stats["selection"] and "bf16 is not used" in stats["selection"]
        with pytest.raises(BackendUnavailable, match="bf16 is not native on this CPU"):
            Inpainter(engines=engines, backend="openvino", precision="bf16", models="lama")
    # asked for fp32, OpenVINO computes fp32 (it would pick bf16 by itself on a CPU with native bf16)
    with Inpainter(engines=engines, backend="openvino", precision="fp32", models="lama") as inp:
        inp.inpaint(img, mask)
        assert inp.pool.runners[Stage.LAMA].compiled_precision == "f32"
        assert inp.stats()["selection"].startswith("backend openvino (fp32: fp32 as asked; ")
    # the CLI's summary carries the same selection
    args = [*map(str, samples_path(0)), "-o", str(tmp_path / "o.png"), "--engines", str(engines)]
    assert main([*args, "--backend", "openvino", "--models", "lama", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "openvino" and summary["precision"] == ("bf16" if native else "fp32")
    assert ("native bf16" if native else "bf16 is not used") in summary["selection"]


def samples_path(k: int):
    from trt_inpaint.samples import sample_pairs

    return sample_pairs()[k]


def test_a_cpu_without_native_bf16_through_a_whole_selection(engines, samples, flags_of):
    """The Zen 3's flags (AVX2 only) in place of this CPU's, on any CPU: an fp32 selection that says why,
    bf16 refused, OpenVINO computing in f32, and the summary saying so. (A CPU without native bf16 cannot
    run the other branch for real: it has the decision tests above.)"""
    flags_of(ZEN3)
    sel = select(Backend.OPENVINO, EngineDir(engines), [Stage.LAMA])
    assert sel.precision is Precision.FP32
    assert "(fp32: no native bf16 here (no avx512_bf16 or amx_bf16 in /proc/cpuinfo" in sel.describe()
    with pytest.raises(BackendUnavailable, match="bf16 is not native on this CPU"):
        select(Backend.OPENVINO, EngineDir(engines), [Stage.LAMA], Precision.BF16)
    img, mask, _ = samples[0]
    with Inpainter(engines=engines, backend="openvino", models="lama") as inp:
        inp.inpaint(img, mask)
        assert inp.pool.runners[Stage.LAMA].compiled_precision == "f32"
        assert "bf16 is not used" in inp.stats()["selection"]


def test_stage_outputs_against_onnx_runtime(engines):
    """fp32: OpenVINO's outputs equal ONNX Runtime's to 1e-5 on every stage. bf16 (native CPUs): they
    differ (bf16 really ran) but stay within 40 dB PSNR over the hole, all finite."""
    native = native_bf16_here()
    for stage in Stage:
        feeds = _feeds(stage)
        path = engines / onnx_filename(stage, Precision.FP32)
        with OrtRunner(stage, path) as r:
            ref = r.run(feeds)["output"]
        with OpenVinoRunner(stage, path, precision=Precision.FP32) as r:
            got = r.run(feeds)["output"]
        assert np.abs(got - ref).max() <= 1e-5, (stage, float(np.abs(got - ref).max()))
        if native:
            with OpenVinoRunner(stage, path, precision=Precision.BF16) as r:
                got16 = r.run(feeds)["output"]
            c = compare([ref], [got16], hole_masks([feeds]))
            assert c.max_abs_diff > 0 and c.psnr_db >= 40 and c.nonfinite == 0, (stage, c)


# ---- the compiled-model cache -------------------------------------------------------------------------


def test_compiled_models_are_cached_and_a_rewritten_model_is_not_taken_for_the_old(tmp_path):
    """The second load comes from the cache. OpenVINO keys a file by path and size only: a model rewritten
    at the same path with the same size (other weights) must be compiled anew, not served from the cache."""
    folder = write_standins(tmp_path / "e", width=2000, stages=(Stage.LAMA,))
    path = folder / onnx_filename(Stage.LAMA, Precision.FP32)
    root, note = cache_root(folder)
    assert root == folder / "openvino-cache" and note is None
    feeds = _feeds()

    def load() -> tuple[bool | None, np.ndarray]:
        with OpenVinoRunner(Stage.LAMA, path, cache_root=root) as r:
            return r.loaded_from_cache, r.run(feeds)["output"]

    first, a = load()
    assert first is False and any(p.is_file() for p in root.rglob("*"))
    again, b = load()
    assert again is True and np.array_equal(a, b)
    size = path.stat().st_size
    onnx.save(standin_model(Stage.LAMA, 2000, seed=5), str(path))
    assert path.stat().st_size == size
    third, c = load()
    with OrtRunner(Stage.LAMA, path) as r:
        new = r.run(feeds)["output"]
    assert third is False and np.abs(c - new).max() <= 1e-5 and np.abs(c - a).max() > 1e-3
    assert len([p for p in root.iterdir() if p.is_dir()]) == 1  # the old version's folder is gone


def test_cache_falls_back_to_the_user_folder_and_says_so(tmp_path, monkeypatch):
    folder = write_standins(tmp_path / "e", width=100, stages=(Stage.LAMA,))
    (folder / "openvino-cache").write_text("a file where the cache folder would go")
    monkeypatch.setenv("TRT_INPAINT_CACHE_DIR", str(tmp_path / "user"))
    root, note = cache_root(folder)
    assert root == tmp_path / "user" / "openvino" and str(folder / "openvino-cache") in note
    sel = select(Backend.OPENVINO, EngineDir(folder), [Stage.LAMA])
    assert f"compiled models cached in {root}" in sel.describe() and "cannot be written" in sel.describe()
    # neither writable: no cache, said so, and the stage still loads and runs
    monkeypatch.setenv("TRT_INPAINT_CACHE_DIR", str(folder / "openvino-cache" / "x"))
    root, note = cache_root(folder)
    assert root is None and note.startswith("compiled models not cached")
    with OpenVinoRunner(Stage.LAMA, folder / onnx_filename(Stage.LAMA, Precision.FP32)) as r:
        assert r.loaded_from_cache is False and r.run(_feeds())["output"].shape == (1, 3, 64, 64)


# ---- footprint, pool, errors --------------------------------------------------------------------------


def test_footprint_at_least_the_weights_and_keyed_by_precision(tmp_path):
    folder = write_standins(tmp_path / "e", width=400_000, stages=(Stage.LAMA,))
    path = folder / onnx_filename(Stage.LAMA, Precision.FP32)
    runner = OpenVinoRunner(Stage.LAMA, path, precision=Precision.FP32)
    assert runner.estimate_footprint() == path.stat().st_size
    with runner:
        at_load = runner.footprint
        assert at_load >= path.stat().st_size
        runner.run(_feeds())
        assert runner.footprint >= at_load
    bf16 = OpenVinoRunner(Stage.LAMA, path, precision=Precision.BF16)
    assert runner_key(runner).startswith("openvino/cpu-fp32|")
    assert runner_key(bf16).startswith("openvino/cpu-bf16|")


def test_pool_runs_the_ensemble_within_a_budget_that_swaps(engines, samples, tmp_path):
    """Footprints measured in one run (kept in a footprint cache, as the CLI does) bound the next run's
    accounting from below: a budget below their sum swaps, and the output does not change."""
    sizes = {s: (engines / onnx_filename(s, Precision.FP32)).stat().st_size for s in Stage}
    opts = dict(engines=engines, backend="openvino", precision="fp32", footprint_cache=tmp_path / "fp.json")
    with Inpainter(**opts, memory_budget=None) as free:
        ref = free.inpaint(samples[1][0], samples[1][1])
        fp = free.stats()["footprints"]
    assert all(fp[s.value] >= sizes[s] for s in Stage)
    budget = sum(fp.values()) - 1  # every stage fits alone, not all of them together
    with Inpainter(**opts, memory_budget=budget) as tight:
        out = tight.inpaint(samples[1][0], samples[1][1])
        stats = tight.stats()
    assert stats["swaps"] > 0 and stats["peak_pool_bytes"] <= budget
    assert np.array_equal(out, ref)


def test_bad_models_are_engine_errors(tmp_path):
    path = tmp_path / "lama.fp32.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(EngineError, match="cannot compile") as e:
        OpenVinoRunner(Stage.LAMA, path).load()
    assert e.value.path == path and "\n" not in str(e.value)
    onnx.save(standin_model(Stage.LAMA_DENOISER, 100), str(path))  # a denoiser is no combiner
    wrong = tmp_path / "combiner.fp32.onnx"
    path.rename(wrong)
    with pytest.raises(EngineError, match="do not match stage combiner"):
        OpenVinoRunner(Stage.COMBINER, wrong).load()
    with pytest.raises(EngineError, match="not found"):
        OpenVinoRunner(Stage.LAMA, tmp_path / "missing.onnx").load()


def test_precision_and_device_errors(engines):
    ed = EngineDir(engines)
    for backend in (Backend.ORT_CPU, Backend.TORCH, Backend.TENSORRT):
        with pytest.raises(InputError, match="bf16 runs on the openvino backend only"):
            select(backend, ed, [Stage.LAMA], Precision.BF16)
    with pytest.raises(BackendUnavailable, match="runs fp32 or bf16, not fp16"):
        select(Backend.OPENVINO, ed, [Stage.LAMA], Precision.FP16)
    import openvino as ov

    if any(d.startswith("GPU") for d in ov.Core().available_devices):  # an Intel GPU: it is selected
        assert select(Backend.OPENVINO, ed, [Stage.LAMA], openvino_device="GPU").backend is Backend.OPENVINO
    else:
        with pytest.raises(BackendUnavailable, match="OpenVINO sees no GPU device here"):
            select(Backend.OPENVINO, ed, [Stage.LAMA], openvino_device="GPU")
    assert InpaintOptions(openvino_device="gpu").openvino_device is OpenVinoDevice.GPU
    with pytest.raises(InputError, match="openvino_device"):
        InpaintOptions(openvino_device="npu")


def test_cli_flags_and_exit_codes(engines, capsys, tmp_path):
    img, mask = samples_path(0)
    base = [str(img), str(mask), "-o", str(tmp_path / "o.png"), "--engines", str(engines), "--models", "lama"]
    assert main([*base, "--backend", "ort-cpu", "--precision", "bf16"]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bf16 runs on the openvino backend only" in err[0]
    assert main([*base, "--backend", "openvino", "--precision", "fp16"]) == BackendUnavailable.exit_code
    assert not (tmp_path / "o.png").exists()


def test_auto_order_prefers_openvino_after_the_nvidia_backends():
    order = (Backend.TENSORRT, Backend.ORT_CUDA, Backend.OPENVINO, Backend.ORT_CPU, Backend.TORCH)
    assert AUTO_ORDER == order
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    text = " ".join(readme.replace("`", "").split())
    assert "--backend auto tries " + ", ".join(b.value for b in AUTO_ORDER) + ", in this order" in text
