"""Training: the loss goes down for the three models, resume equals an uninterrupted run, weights load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from trt_inpaint.export.spec import Stage
from trt_inpaint.models.checkpoints import load_combiner, load_denoiser
from trt_inpaint.training.cli import train_combiner_main, train_denoiser_main
from trt_inpaint.training.datasets import InpaintSamples
from trt_inpaint.training.loop import Trainer, TrainOptions
from trt_inpaint.training.losses import CombinedLoss, LossWeights, MSEOnly
from trt_inpaint.training.tasks import Arch, load_trained, make_task
from trt_inpaint.training.vgg import load_vgg16_features

CPU = torch.device("cpu")


def _mean_loss(task, data) -> float:
    batch = {k: torch.stack([data[i][k] for i in range(len(data))]) for k in data[0]}
    with torch.no_grad():
        return float(task.loss(task.wrapper(*task.inputs(batch)), batch["target"])[0])


def _train(index, stage, out: Path, loss, epochs=3, lr=5e-3, seed=0, arch=Arch.TINY, init_seed=None, **kw):
    torch.manual_seed(seed if init_seed is None else init_seed)
    frozen = {s: kw.pop(s.value) for s in (Stage.LAMA_DENOISER, Stage.COMBINER) if s.value in kw}
    task = make_task(stage, arch, loss, CPU, frozen)
    data = InpaintSamples(index, index.items[:4], index.mask_sets, task.sources)
    val = InpaintSamples(index, index.items[4:], index.mask_sets, task.sources)
    before = _mean_loss(task, data)
    opts = TrainOptions(out_dir=out, epochs=epochs, batch_size=3, lr=lr, seed=seed, progress=False, **kw)
    result = Trainer(task, data, val, opts, CPU).run(log=lambda m: None)
    return task, result, before, _mean_loss(task, data)


@pytest.fixture(scope="module")
def chain(prepared, tmp_path_factory, vgg16_file):
    """lama_denoiser -> combiner (all four loss terms) -> final_denoiser, each a few steps."""
    root = tmp_path_factory.mktemp("train")
    ld = _train(prepared, Stage.LAMA_DENOISER, root / "ld", MSEOnly())
    vgg = load_vgg16_features(vgg16_file)
    cb = _train(
        prepared,
        Stage.COMBINER,
        root / "cb",
        CombinedLoss(LossWeights(), vgg),
        lr=3e-3,
        lama_denoiser=ld[1].weights,
    )
    fd = _train(
        prepared,
        Stage.FINAL_DENOISER,
        root / "fd",
        MSEOnly(),
        lama_denoiser=ld[1].weights,
        combiner=cb[1].weights,
    )
    return {Stage.LAMA_DENOISER: ld, Stage.COMBINER: cb, Stage.FINAL_DENOISER: fd}


@pytest.mark.parametrize("stage", [Stage.LAMA_DENOISER, Stage.COMBINER, Stage.FINAL_DENOISER])
def test_a_few_steps_lower_the_loss(chain, stage):
    task, result, before, after = chain[stage]
    assert result.finished and result.steps == 3 * 3  # 8 samples / batch 3 -> 3 steps per epoch
    assert after < before, (before, after)
    assert len(result.history) == 3 and all("val_loss" in h and "val_psnr" in h for h in result.history)
    if stage is Stage.COMBINER:
        assert {"train_mse", "train_edge", "train_perceptual", "train_style"} <= set(result.history[0])


@pytest.mark.parametrize("stage", [Stage.LAMA_DENOISER, Stage.COMBINER, Stage.FINAL_DENOISER])
def test_saved_weights_load_through_the_checkpoint_loaders(chain, stage):
    task, result, _, _ = chain[stage]
    last = load_file(str(result.last_weights))
    assert set(last) == set(task.model.state_dict())
    assert all(torch.equal(last[k], v) for k, v in task.model.state_dict().items())
    widths = tuple(task.model.widths)
    loader = load_combiner if stage is Stage.COMBINER else load_denoiser
    model = loader(result.weights, widths=widths)
    ours = load_trained(stage, result.weights)
    a, b = model.state_dict(), ours.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_equals_uninterrupted(prepared, tmp_path):
    _, full, _, _ = _train(prepared, Stage.LAMA_DENOISER, tmp_path / "full", MSEOnly(), epochs=2)
    # interrupted mid-epoch 2 (step 4 of 6), then resumed by a new trainer whose model starts elsewhere
    _, part, _, _ = _train(prepared, Stage.LAMA_DENOISER, tmp_path / "cut", MSEOnly(), epochs=2, max_steps=4)
    assert not part.finished and part.steps == 4 and len(part.history) == 1
    _, resumed, _, _ = _train(
        prepared, Stage.LAMA_DENOISER, tmp_path / "cut", MSEOnly(), epochs=2, init_seed=99
    )
    assert resumed.resumed_from == 4 and resumed.finished and resumed.steps == 6
    a, b = load_file(str(full.last_weights)), load_file(str(resumed.last_weights))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert full.history == resumed.history
    # a checkpoint from other settings is refused, not silently mixed
    from trt_inpaint.errors import CheckpointError

    with pytest.raises(CheckpointError, match="other settings"):
        _train(prepared, Stage.LAMA_DENOISER, tmp_path / "cut", MSEOnly(), epochs=3, lr=1e-4)


def test_cli_says_perceptual_off_and_needs_inputs(prepared, tmp_path, capsys):
    data = str(prepared.root)
    code = train_combiner_main(
        [
            data,
            "--arch",
            "tiny",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "c"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "perceptual and style terms are OFF" in err and "no --lama-denoiser" in err
    assert (tmp_path / "c" / "combiner.last.safetensors").is_file()
    code = train_denoiser_main([data, "--target", "final", "--arch", "tiny", "--no-progress"])
    assert code == 2 and "--lama-denoiser and --combiner" in capsys.readouterr().err
    code = train_combiner_main([data, "--vgg16", str(tmp_path / "missing.pth"), "--no-progress"])
    assert code == 3 and "weights file not found" in capsys.readouterr().err


def test_missing_cache_is_a_clear_error(prepared, tmp_path, capsys):
    import shutil

    from trt_inpaint.training.data import PrepareOptions, prepare_data

    src = tmp_path / "src"
    shutil.copytree(prepared.root / "images", src)
    idx = prepare_data(src, tmp_path / "d", PrepareOptions(size=32, masks="thin"), progress=False)
    code = train_denoiser_main([str(idx.root), "--target", "lama", "--arch", "tiny", "--no-progress"])
    assert code == 2 and "run cache-outputs first" in capsys.readouterr().err


def test_trained_weights_go_through_export_engines(prepared, tmp_path):
    """Default-size denoiser, two steps, then the exporter's own path: fp32 ONNX that ORT runs like torch."""
    import onnxruntime as ort

    from trt_inpaint.export import spec as S
    from trt_inpaint.export.build import Exporter, ExportOptions
    from trt_inpaint.export.engine import Builder
    from trt_inpaint.models.stages import build_stage

    task, result, _, _ = _train(
        prepared, Stage.LAMA_DENOISER, tmp_path / "ld", MSEOnly(), epochs=1, arch=Arch.DEFAULT, max_steps=2
    )
    out = tmp_path / "engines"
    opts = ExportOptions(
        out_dir=out,
        weights={S.Stage.LAMA_DENOISER: result.last_weights},
        precision=S.Precision.FP32,
        builder=Builder.NONE,
        stages=(S.Stage.LAMA_DENOISER,),
    )
    manifest, _ = Exporter(opts).run()
    assert manifest.stages["lama_denoiser"].random_init is False
    sess = ort.InferenceSession(
        str(out / S.onnx_filename(S.Stage.LAMA_DENOISER, S.Precision.FP32)),
        providers=["CPUExecutionProvider"],
    )
    sample = InpaintSamples(prepared, prepared.items[:1], prepared.mask_sets[:1], ("lama",))[0]
    x, m = sample["lama"][None], sample["mask"][None]
    got = sess.run(None, {"image": x.numpy(), "mask": m.numpy()})[0]
    with torch.no_grad():
        ref = build_stage(Stage.LAMA_DENOISER, task.model.eval())(x, m).numpy()
    assert np.abs(got - ref).max() < 1e-4


class _Crashing(torch.utils.data.Dataset):
    """Raises once, at the ``at``-th item read: a run killed mid-epoch."""

    def __init__(self, inner, at: int):
        self.inner, self.at, self.reads = inner, at, 0

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == self.at:
            raise KeyboardInterrupt
        return self.inner[i]


def test_crash_resumes_from_the_periodic_checkpoint(prepared, tmp_path):
    """checkpoint_every=2 steps; a crash during step 5 loses step 5 only, and the rerun ends bit-identical."""
    _, full, _, _ = _train(prepared, Stage.LAMA_DENOISER, tmp_path / "full", MSEOnly(), epochs=2)

    def run(dataset_wrap=None, init_seed=None):
        torch.manual_seed(0 if init_seed is None else init_seed)
        task = make_task(Stage.LAMA_DENOISER, Arch.TINY, MSEOnly(), CPU)
        data = InpaintSamples(prepared, prepared.items[:4], prepared.mask_sets, task.sources)
        val = InpaintSamples(prepared, prepared.items[4:], prepared.mask_sets, task.sources)
        opts = TrainOptions(out_dir=tmp_path / "crash", epochs=2, batch_size=3, lr=5e-3, checkpoint_every=2,
                            progress=False)  # fmt: skip
        return Trainer(task, dataset_wrap(data) if dataset_wrap else data, val, opts, CPU).run(
            log=lambda m: None
        )

    with pytest.raises(KeyboardInterrupt):
        run(lambda d: _Crashing(d, at=4 * 3 + 2))  # inside step 5 (batches of 3 items)
    resumed = run(init_seed=7)
    assert resumed.resumed_from == 4 and resumed.steps == 6
    a, b = load_file(str(full.last_weights)), load_file(str(resumed.last_weights))
    assert all(torch.equal(a[k], b[k]) for k in a) and full.history == resumed.history
