"""The training loop: seeded, checkpointed, resumable to the same bits, validated each epoch.

Order of samples in epoch e is ``randperm`` from a generator seeded by (seed, e), so a run resumed from a
checkpoint (end of an epoch or mid-epoch, every ``checkpoint_every`` steps) replays exactly the batches an
uninterrupted run would. Files under ``out_dir``:

    <stage>.safetensors          weights with the best validation loss (the last ones without validation)
    <stage>.last.safetensors     weights after the last finished step
    checkpoints/last.pt          model + optimizer + position + history (torch.save; read weights_only)
    history.json                 per epoch: train loss and terms, validation loss and PSNR
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trt_inpaint import atomic
from trt_inpaint.errors import CheckpointError, InputError
from trt_inpaint.training.tasks import Task

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainOptions:
    out_dir: Path
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0: at epoch ends only
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in total
    restart: bool = False  # ignore an existing checkpoint
    workers: int = 0
    progress: bool = True


@dataclass
class TrainResult:
    weights: Path  # best (or last) weights
    last_weights: Path
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    finished: bool = True  # False when stopped by max_steps
    resumed_from: int | None = None  # global step of the checkpoint resumed from


class _EpochBatches(Sampler[list[int]]):
    """The batches of one epoch (fixed permutation), starting at batch ``start``."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        self.batches = [perm[i : i + batch_size] for i in range(0, n, batch_size)][start:]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def batches_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = ((output - target) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


class Trainer:
    def __init__(
        self,
        task: Task,
        train_set: Dataset,
        val_set: Dataset | None,
        opts: TrainOptions,
        device: torch.device | str = "cpu",
    ):
        if len(train_set) == 0:
            raise InputError("no training samples")
        if opts.epochs < 1 or opts.batch_size < 1:
            raise InputError("--epochs and --batch-size must be >= 1")
        self.task, self.train_set, self.val_set, self.opts = task, train_set, val_set, opts
        self.device = torch.device(device)
        if self.device.type == "cuda":  # replayable batches are only half of resuming to the same bits
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        self.optimizer = torch.optim.Adam(task.model.parameters(), lr=opts.lr)
        self.out = Path(opts.out_dir)
        self.name = task.stage.value
        self.ckpt_path = self.out / "checkpoints" / "last.pt"

    # ---- checkpoints ------------------------------------------------------------------------------

    def _fingerprint(self) -> dict:
        o = self.opts
        return {
            "stage": self.name,
            "seed": o.seed,
            "batch_size": o.batch_size,
            "lr": o.lr,
            "n_train": len(self.train_set),
            "metadata": self.task.metadata,
        }

    def _save_checkpoint(self, state: dict) -> None:
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": CHECKPOINT_VERSION,
            "fingerprint": json.dumps(self._fingerprint(), sort_keys=True),
            "model": {k: v.detach().cpu().clone() for k, v in self.task.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "state": json.dumps(state),
        }
        with atomic.atomic_path(self.ckpt_path) as tmp:
            torch.save(payload, tmp)

    def _load_checkpoint(self) -> dict | None:
        if self.opts.restart or not self.ckpt_path.is_file():
            return None
        try:
            payload = torch.load(str(self.ckpt_path), map_location="cpu", weights_only=True)
            fp = json.loads(payload["fingerprint"])
            state = json.loads(payload["state"])
        except Exception as e:
            raise CheckpointError(
                f"damaged training checkpoint ({type(e).__name__}); use --restart", self.ckpt_path
            ) from e
        if fp != json.loads(json.dumps(self._fingerprint(), sort_keys=True)):
            raise CheckpointError(
                "checkpoint made with other settings (stage, seed, batch size, lr, data or model size); "
                "use --restart or another --out",
                self.ckpt_path,
            )
        self.task.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        return state

    def _save_weights(self, path: Path) -> None:
        from trt_inpaint.models.checkpoints import save_safetensors

        save_safetensors(self.task.model, path, metadata=self.task.metadata)

    # ---- validation -------------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        assert self.val_set is not None
        self.task.wrapper.eval()
        loader = DataLoader(
            self.val_set, batch_size=self.opts.batch_size, shuffle=False, num_workers=self.opts.workers
        )
        total = n = 0.0
        psnr = 0.0
        for batch in loader:
            batch = _to(batch, self.device)
            out = self.task.wrapper(*self.task.inputs(batch))
            loss, _ = self.task.loss(out, batch["target"])
            k = batch["target"].shape[0]
            total += float(loss) * k
            psnr += float(_psnr(out, batch["target"]).sum())
            n += k
        self.task.wrapper.train()
        return {"val_loss": total / n, "val_psnr": psnr / n}

    # ---- the loop ---------------------------------------------------------------------------------

    def run(self, log=print) -> TrainResult:
        from tqdm import tqdm

        o = self.opts
        self.out.mkdir(parents=True, exist_ok=True)
        best_path, last_path = (
            self.out / f"{self.name}.safetensors",
            self.out / f"{self.name}.last.safetensors",
        )
        state = self._load_checkpoint()
        resumed_from = None
        if state is None:
            state = {
                "epoch": 0,
                "batch": 0,
                "step": 0,
                "loss_sum": 0.0,
                "terms_sum": {},
                "count": 0,
                "history": [],
                "best_val": None,
            }
        else:
            resumed_from = state["step"]
            log(f"resuming from {self.ckpt_path} (epoch {state['epoch'] + 1}, step {state['step']})")
        for note in self.task.notes:
            log(note)
        n_batches = batches_per_epoch(len(self.train_set), o.batch_size)
        self.task.wrapper.train()
        stopped = False
        while state["epoch"] < o.epochs and not stopped:
            e = state["epoch"]
            sampler = _EpochBatches(len(self.train_set), o.batch_size, o.seed, e, state["batch"])
            loader = DataLoader(self.train_set, batch_sampler=sampler, num_workers=o.workers)
            bar = tqdm(
                loader,
                total=n_batches,
                initial=state["batch"],
                disable=not o.progress,
                desc=f"{self.name} epoch {e + 1}/{o.epochs}",
                unit="batch",
            )
            for batch in bar:
                batch = _to(batch, self.device)
                out = self.task.wrapper(*self.task.inputs(batch))
                loss, terms = self.task.loss(out, batch["target"])
                if not torch.isfinite(loss):
                    raise InputError(f"loss became {float(loss)} at step {state['step']}; lower --lr")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                state["step"] += 1
                state["batch"] += 1
                state["loss_sum"] += float(loss.detach())
                state["count"] += 1
                for k, v in terms.items():
                    state["terms_sum"][k] = state["terms_sum"].get(k, 0.0) + v
                bar.set_postfix(loss=f"{state['loss_sum'] / state['count']:.5f}")
                at_max = o.max_steps is not None and state["step"] >= o.max_steps
                if state["batch"] < n_batches and (
                    at_max or (o.checkpoint_every and state["step"] % o.checkpoint_every == 0)
                ):
                    self._save_checkpoint(state)
                    self._save_weights(last_path)
                if at_max:
                    stopped = True
                    break
            bar.close()
            if state["batch"] < n_batches:
                break
            entry = {
                "epoch": e + 1,
                "steps": state["step"],
                "train_loss": state["loss_sum"] / max(1, state["count"]),
            }
            entry.update({f"train_{k}": v / max(1, state["count"]) for k, v in state["terms_sum"].items()})
            self._save_weights(last_path)
            if self.val_set is not None and len(self.val_set) > 0:
                entry.update(self.validate())
                if state["best_val"] is None or entry["val_loss"] < state["best_val"]:
                    state["best_val"] = entry["val_loss"]
                    self._save_weights(best_path)
                log(
                    f"{self.name} epoch {e + 1}: train {entry['train_loss']:.5f}  "
                    f"val {entry['val_loss']:.5f}  val PSNR {entry['val_psnr']:.2f} dB"
                )
            else:
                self._save_weights(best_path)
                log(f"{self.name} epoch {e + 1}: train {entry['train_loss']:.5f} (no validation set)")
            state["history"].append(entry)
            state.update(epoch=e + 1, batch=0, loss_sum=0.0, terms_sum={}, count=0)
            self._save_checkpoint(state)
            atomic.write_text(self.out / "history.json", json.dumps(state["history"], indent=1))
            if o.max_steps is not None and state["step"] >= o.max_steps:
                stopped = True
        finished = state["epoch"] >= o.epochs
        return TrainResult(
            best_path if best_path.exists() else last_path,
            last_path,
            state["history"],
            state["step"],
            finished,
            resumed_from,
        )


def options_dict(opts: TrainOptions) -> dict:
    d = asdict(opts)
    d["out_dir"] = str(d["out_dir"])
    return d
