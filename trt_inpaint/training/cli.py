"""Console scripts: prepare-data, cache-outputs, train-denoiser, train-combiner, evaluate.

Each ``<name>_main(argv=None) -> int`` returns an exit code; typed errors print one line and exit with
their code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from trt_inpaint.errors import InputError, TrtInpaintError


def _log(prog: str) -> Callable[[str], None]:
    return lambda msg: print(f"{prog}: {msg}", file=sys.stderr)


def _guard(prog: str, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except TrtInpaintError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (run again to resume)", file=sys.stderr)
        return 130


def _sets(value: str | None) -> list[str] | None:
    return None if value is None else [s.strip() for s in value.split(",") if s.strip()]


def _resolve_sets(index, value: str | None) -> list[str]:
    from trt_inpaint.training.masks import resolve_mask_sets

    if value is None:
        return list(index.mask_sets)
    return [c.name for c in resolve_mask_sets(value, index.size)]


# ---- prepare-data -----------------------------------------------------------------------------------


def prepare_data_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="prepare-data",
        description="Places365-style tree (one folder per category) or flat folder -> resized RGB images, "
        "LaMa-style masks (0/255 PNG) and index.json. Non-3-channel images are dropped.",
    )
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--per-class", type=int, default=20, help="images per category (default 20, as the paper)")
    p.add_argument("--size", type=int, default=256, help="square side in pixels (default 256)")
    p.add_argument(
        "--masks",
        default="thick,medium,thin",
        help="mask sets: thick, medium, thin (the _256 or _512 configuration by --size) or full names",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    log = _log(p.prog)

    def run() -> int:
        from trt_inpaint.training.data import PrepareOptions, prepare_data

        opts = PrepareOptions(per_class=a.per_class, size=a.size, masks=a.masks, seed=a.seed)
        idx = prepare_data(a.src, a.dst, opts, progress=not a.no_progress)
        cats = len({i.category for i in idx.items})
        log(
            f"{len(idx.items)} images from {cats} categories, masks {', '.join(idx.mask_sets)}; "
            f"{len(idx.dropped)} dropped; index {a.dst / 'index.json'}"
        )
        return 0

    return _guard(p.prog, run)


# ---- cache-outputs ----------------------------------------------------------------------------------


def _add_run_args(p: argparse.ArgumentParser) -> None:
    from trt_inpaint.distributed.cli_args import add_ray_args
    from trt_inpaint.runtime.cli_args import add_engine_args, add_seed_arg

    add_engine_args(p)
    add_seed_arg(p)
    p.add_argument("--masks", default=None, help="mask sets to run (default: every prepared set)")
    p.add_argument("--chunk", type=int, default=64, help="images handed to the runtime at once")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    p.add_argument("--no-progress", action="store_true")
    add_ray_args(p)


def _run_options(a):
    from trt_inpaint.distributed.cli_args import ray_options_from_args
    from trt_inpaint.runtime.cli_args import options_from_args
    from trt_inpaint.runtime.options import InpaintOptions
    from trt_inpaint.training.cache import RunOptions

    if a.chunk < 1:
        raise InputError("--chunk must be >= 1")
    # evaluate's --models is a list of pipelines, not the runtime's option: each run sets its own models
    return RunOptions(
        options_from_args(a, models=InpaintOptions.default("models")),
        chunk=a.chunk,
        overwrite=a.overwrite,
        progress=not a.no_progress,
        ray=ray_options_from_args(a),
    )


def cache_outputs_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cache-outputs",
        description="Run LaMa over the whole prepared set, release it, then MAT; store both outputs under "
        "DATA/outputs/. Resumes where it stopped.",
    )
    p.add_argument("data", type=Path, help="folder made by prepare-data")
    _add_run_args(p)
    a = p.parse_args(argv)
    log = _log(p.prog)

    def run() -> int:
        from trt_inpaint.distributed.cluster import maybe_session
        from trt_inpaint.training.cache import cache_outputs
        from trt_inpaint.training.data import load_index

        idx = load_index(a.data)
        opts = _run_options(a)
        with maybe_session(opts.ray, log):  # one cluster for LaMa, then MAT
            summaries = cache_outputs(idx, _resolve_sets(idx, a.masks), opts, log=log)
        return 1 if any(s.failed for s in summaries) else 0

    return _guard(p.prog, run)


# ---- training ---------------------------------------------------------------------------------------


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="folder made by prepare-data (with cache-outputs run)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default DATA/train/<stage>)")
    p.add_argument(
        "--val-data",
        type=Path,
        default=None,
        help="a separate prepared (and cached) folder for validation; default: a split of DATA",
    )
    p.add_argument("--val-fraction", type=float, default=0.05, help="held-out share of DATA (default 0.05)")
    p.add_argument("--masks", default=None, help="mask sets to train on (default: every prepared set)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arch", choices=["default", "tiny"], default="default", help="model size (tiny: tests)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between mid-epoch checkpoints")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (resumable)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--lama-denoiser", type=Path, default=None, help="trained lama_denoiser weights")
    p.add_argument("--no-progress", action="store_true")


def _train(a, stage, loss_factory, log) -> int:
    import torch

    from trt_inpaint.export.spec import Stage, spec
    from trt_inpaint.training.data import load_index, split_items
    from trt_inpaint.training.datasets import InpaintSamples
    from trt_inpaint.training.loop import Trainer, TrainOptions
    from trt_inpaint.training.tasks import Arch, make_task

    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    idx = load_index(a.data)
    sets = _resolve_sets(idx, a.masks)
    if a.val_data is not None:
        train_items, val_idx = idx.items, load_index(a.val_data)
        val_items = val_idx.items
    else:
        train_items, val_items = split_items(idx.items, a.val_fraction, a.seed)
        val_idx = idx
    torch.manual_seed(a.seed)
    # frozen upstream weights: every flag named after a stage (--lama-denoiser, --combiner)
    frozen = {s: getattr(a, s.value) for s in Stage if getattr(a, s.value, None) is not None}
    task = make_task(stage, Arch(a.arch), loss_factory(device), device, frozen)
    train_set = InpaintSamples(idx, train_items, sets, task.sources)
    val_set = InpaintSamples(val_idx, val_items, sets, task.sources) if val_items else None
    out = a.out or (a.data / "train" / stage.value)
    opts = TrainOptions(
        out_dir=out,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        checkpoint_every=a.checkpoint_every,
        max_steps=a.max_steps,
        restart=a.restart,
        workers=a.workers,
        progress=not a.no_progress,
    )
    log(
        f"{stage.value}: {len(train_set)} training samples, {0 if val_set is None else len(val_set)} "
        f"validation samples, {sum(p.numel() for p in task.model.parameters())} parameters, on {device}"
    )
    res = Trainer(task, train_set, val_set, opts, device).run(log)
    if res.finished:
        log(f"weights: {res.weights} (pass it to export-engines {spec(stage).weights_flag})")
    else:
        log(f"stopped at step {res.steps}; run the same command again to resume")
    return 0


def train_denoiser_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="train-denoiser",
        description="Train a denoiser with MSE. --target lama: LaMa's cached output -> ground truth. "
        "--target final: the combiner's output -> ground truth; its inputs are computed on the fly from the "
        "LaMa and MAT caches by the trained, frozen --lama-denoiser and --combiner.",
    )
    _add_train_args(p)
    p.add_argument("--target", choices=["lama", "final"], required=True)
    p.add_argument("--combiner", type=Path, default=None, help="trained combiner weights (--target final)")
    a = p.parse_args(argv)
    log = _log(p.prog)

    def run() -> int:
        from trt_inpaint.export.spec import Stage
        from trt_inpaint.training.losses import MSEOnly

        stage = Stage.LAMA_DENOISER if a.target == "lama" else Stage.FINAL_DENOISER
        return _train(a, stage, lambda device: MSEOnly(), log)

    return _guard(p.prog, run)


def train_combiner_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="train-combiner",
        description="Train the combiner on (LamaDenoiser(LaMa), MAT, mask) -> ground truth with "
        "style (Gram) + edge (Sobel) + perceptual (VGG16) + MSE losses, each weighted by a flag.",
    )
    _add_train_args(p)
    p.add_argument(
        "--vgg16",
        type=Path,
        default=None,
        help="torchvision VGG16 weights (vgg16-397923af.pth) for the perceptual and style terms",
    )
    p.add_argument("--w-mse", type=float, default=1.0)
    p.add_argument("--w-edge", type=float, default=0.1)
    p.add_argument("--w-perceptual", type=float, default=0.05)
    p.add_argument("--w-style", type=float, default=100.0)
    p.set_defaults(lr=2e-4)
    a = p.parse_args(argv)
    log = _log(p.prog)

    def run() -> int:
        from trt_inpaint.export.spec import Stage
        from trt_inpaint.training.losses import CombinedLoss, LossWeights

        w = LossWeights(mse=a.w_mse, edge=a.w_edge, perceptual=a.w_perceptual, style=a.w_style)
        vgg = None
        if w.needs_vgg:
            if a.vgg16 is None:
                log(
                    "perceptual and style terms are OFF: no --vgg16 weights given (torchvision's "
                    "vgg16-397923af.pth; no package ships them)"
                )
                w = w.without_vgg()
            else:
                from trt_inpaint.training.vgg import load_vgg16_features

                vgg = load_vgg16_features(a.vgg16)
        log("loss = " + " + ".join(f"{v:g}*{k}" for k, v in vars(w).items() if v > 0))

        def factory(device):
            return CombinedLoss(w, None if vgg is None else vgg.to(device))

        return _train(a, Stage.COMBINER, factory, log)

    return _guard(p.prog, run)


# ---- evaluate ---------------------------------------------------------------------------------------


def evaluate_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="evaluate",
        description="PSNR and SSIM (always), LPIPS and FID (given their weights) per mask set and per model: "
        "LaMa alone, MAT alone, the ensemble. Missing outputs are run through the runtime first.",
    )
    p.add_argument("data", type=Path, help="folder made by prepare-data")
    _add_run_args(p)
    p.add_argument("--models", default="lama,mat,ensemble")
    p.add_argument("--out", type=Path, default=None, help="report folder (default DATA/eval)")
    p.add_argument("--no-run", action="store_true", help="score existing outputs only")
    p.add_argument("--vgg16", type=Path, default=None, help="torchvision VGG16 weights (LPIPS backbone)")
    p.add_argument("--lpips-lin", type=Path, default=None, help="lpips v0.1 vgg.pth (LPIPS linear layers)")
    p.add_argument("--inception", type=Path, default=None, help="pt_inception-2015-12-05-6726825d.pth (FID)")
    a = p.parse_args(argv)
    log = _log(p.prog)

    def run() -> int:
        from trt_inpaint.export.spec import Pipeline
        from trt_inpaint.training.data import load_index
        from trt_inpaint.training.evaluate import EvalOptions, evaluate, markdown

        try:
            models = tuple(Pipeline(m) for m in _sets(a.models) or [])
        except ValueError as e:
            raise InputError(f"--models: {e}; choose from lama, mat, ensemble") from None
        idx = load_index(a.data)
        out = a.out or (a.data / "eval")
        opts = EvalOptions(
            out_dir=out,
            models=models,
            mask_sets=tuple(_resolve_sets(idx, a.masks)),
            run=None if a.no_run else _run_options(a),
            vgg16=a.vgg16,
            lpips_lin=a.lpips_lin,
            inception=a.inception,
            progress=not a.no_progress,
        )
        from trt_inpaint.distributed.cluster import maybe_session

        with maybe_session(None if opts.run is None else opts.run.ray, log):
            report = evaluate(idx, opts, log)
        print(markdown(report))
        log(f"report: {out / 'report.md'} and {out / 'report.json'}")
        return 0

    return _guard(p.prog, run)
