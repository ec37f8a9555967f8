"""What each trained stage learns from: inputs built from a batch, the trainable model, its loss.

- lama_denoiser: LaMa's cached output -> ground truth (MSE).
- combiner: (LamaDenoiser(LaMa's cache), MAT's cache, mask) -> ground truth (style + edge + perceptual +
  MSE). The trained lama_denoiser is applied on the fly (frozen); without it the combiner learns from
  LaMa's raw output, and says so.
- final_denoiser: Combiner(LamaDenoiser(LaMa), MAT) -> ground truth (MSE). Its inputs are computed on the
  fly from the LaMa and MAT caches by the trained, frozen lama_denoiser and combiner (both required), so
  no third cache is needed and they always match the weights given.

Every stage trains through its stage wrapper (``models.stages``): the loss sees exactly the exported,
composited output.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from trt_inpaint.errors import CheckpointError, InputError
from trt_inpaint.export.spec import Stage


class Arch(str, enum.Enum):
    DEFAULT = "default"
    TINY = "tiny"  # tests and smoke runs

    def __str__(self) -> str:
        return self.value


def new_model(stage: Stage, arch: Arch) -> nn.Module:
    """A freshly initialised (torch default init, global RNG) denoiser or combiner."""
    from trt_inpaint.models import combiner, denoiser

    if stage is Stage.COMBINER:
        return combiner.combiner_tiny() if arch is Arch.TINY else combiner.combiner_default()
    if stage in (Stage.LAMA_DENOISER, Stage.FINAL_DENOISER):
        return denoiser.denoiser_tiny() if arch is Arch.TINY else denoiser.denoiser_default()
    raise ValueError(f"stage {stage} is not trained here")


def model_metadata(stage: Stage, model: nn.Module, arch: Arch) -> dict[str, str]:
    """safetensors metadata: which stage and which constructor arguments (widths) the weights fit."""
    return {"stage": stage.value, "arch": arch.value, "widths": json.dumps(list(model.widths))}


def load_trained(stage: Stage, path: str | Path) -> nn.Module:
    """A trained denoiser/combiner (frozen, eval) through models.checkpoints, widths from our metadata."""
    from trt_inpaint.models import checkpoints

    path = Path(path)
    if not path.is_file():
        raise CheckpointError("weights file not found", path)
    loader = checkpoints.load_combiner if stage is Stage.COMBINER else checkpoints.load_denoiser
    model = loader(path)  # widths come from the file's metadata
    model.requires_grad_(False)
    return model.eval()


@dataclass
class Task:
    """A trainable stage: ``inputs(batch)`` gives the stage wrapper's positional inputs."""

    stage: Stage
    model: nn.Module  # the underlying model whose weights are saved
    wrapper: nn.Module  # build_stage(stage, model): what the loss sees
    sources: tuple[str, ...]  # cached outputs the dataset must provide
    inputs: Callable[[dict[str, Tensor]], tuple[Tensor, ...]]
    loss: nn.Module
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # said once at the start


def _frozen_stage(stage: Stage, path: Path, device: torch.device) -> nn.Module:
    from trt_inpaint.models.stages import build_stage

    return build_stage(stage, load_trained(stage, path)).to(device).eval()


def make_task(
    stage: Stage,
    arch: Arch,
    loss: nn.Module,
    device: torch.device,
    lama_denoiser: Path | None = None,
    combiner: Path | None = None,
) -> Task:
    """Build the model (after the caller seeded torch) and the input recipe for ``stage``."""
    from trt_inpaint.models.stages import build_stage

    model = new_model(stage, arch).to(device)
    wrapper = build_stage(stage, model)
    meta = model_metadata(stage, model, arch)
    notes: list[str] = []
    if stage is Stage.LAMA_DENOISER:
        return Task(stage, model, wrapper, ("lama",), lambda b: (b["lama"], b["mask"]), loss, meta, notes)
    if stage is Stage.COMBINER:
        if lama_denoiser is None:
            notes.append("no --lama-denoiser given: the combiner learns from LaMa's raw cached output")
            return Task(
                stage,
                model,
                wrapper,
                ("lama", "mat"),
                lambda b: (b["lama"], b["mat"], b["mask"]),
                loss,
                meta,
                notes,
            )
        ld = _frozen_stage(Stage.LAMA_DENOISER, lama_denoiser, device)

        def combiner_inputs(b: dict[str, Tensor]) -> tuple[Tensor, ...]:
            with torch.no_grad():
                return ld(b["lama"], b["mask"]), b["mat"], b["mask"]

        return Task(stage, model, wrapper, ("lama", "mat"), combiner_inputs, loss, meta, notes)
    if stage is Stage.FINAL_DENOISER:
        if lama_denoiser is None or combiner is None:
            raise InputError("--target final needs the trained --lama-denoiser and --combiner weights")
        ld = _frozen_stage(Stage.LAMA_DENOISER, lama_denoiser, device)
        cb = _frozen_stage(Stage.COMBINER, combiner, device)

        def final_inputs(b: dict[str, Tensor]) -> tuple[Tensor, ...]:
            with torch.no_grad():
                return cb(ld(b["lama"], b["mask"]), b["mat"], b["mask"]), b["mask"]

        return Task(stage, model, wrapper, ("lama", "mat"), final_inputs, loss, meta, notes)
    raise ValueError(f"stage {stage} is not trained here")
