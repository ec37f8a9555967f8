"""What each trained stage learns from: inputs built from a batch, the trainable model, its loss.

Which stages are trained is the spec's stage table (``trained``); what each learns from is the ensemble
graph (``spec.PIPELINES``) resolved down to the cached outputs of the pretrained stages. Today:

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from trt_inpaint.errors import CheckpointError, InputError
from trt_inpaint.export.spec import PIPELINES, Pipeline, Role, Stage, spec


class Arch(str, enum.Enum):
    DEFAULT = "default"
    TINY = "tiny"  # tests and smoke runs

    def __str__(self) -> str:
        return self.value


def _trained_row(stage: Stage):
    row = spec(stage)
    if not row.trained:
        raise ValueError(f"stage {stage} is not trained here (spec.STAGES: it loads a pretrained checkpoint)")
    return row


def new_model(stage: Stage, arch: Arch) -> nn.Module:
    """A freshly initialised (torch default init, global RNG) model of a trained stage."""
    from trt_inpaint.models.stages import stage_model

    _trained_row(stage)
    return stage_model(stage, tiny=arch is Arch.TINY)


def model_metadata(stage: Stage, model: nn.Module, arch: Arch) -> dict[str, str]:
    """safetensors metadata: which stage and which constructor arguments (widths) the weights fit."""
    return {"stage": stage.value, "arch": arch.value, "widths": json.dumps(list(model.widths))}


def load_trained(stage: Stage, path: str | Path) -> nn.Module:
    """Trained weights of ``stage`` (frozen, eval) through its checkpoint loader, widths from our metadata."""
    from trt_inpaint.models.stages import load_stage_model

    path = Path(path)
    if not path.is_file():
        raise CheckpointError("weights file not found", path)
    model = load_stage_model(stage, path)  # widths come from the file's metadata
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


Feed = Callable[[dict[str, Tensor]], Tensor]
_GRAPH = {call.stage: call for call in PIPELINES[Pipeline.ENSEMBLE]}


def _passes_through(stage: Stage) -> bool:
    """A refinement (one image in, the same image refined out): leaving it out passes its input on."""
    return sum(t.role is Role.IMAGE for t in spec(stage).inputs) == 1


class _Recipe:
    """Resolves the feeds of the stage being trained through the ensemble graph, down to the batch: the
    mask, the cached outputs of the pretrained stages, and trained upstream stages applied frozen from
    their weights. A missing upstream refinement that feeds the trained stage directly is left out (said
    once); any other missing upstream weights are an error (a frozen stage must see what it was trained
    on)."""

    def __init__(self, stage: Stage, frozen: Mapping[Stage, Path], device: torch.device):
        self.stage, self.frozen, self.device = stage, frozen, device
        self.sources: set[Stage] = set()
        self.missing: set[Stage] = set()
        self.notes: list[str] = []

    def inputs(self, stage: Stage) -> list[Feed | None]:
        call, out = _GRAPH[stage], []
        for t in spec(stage).inputs:
            if t.name not in call.feeds:
                raise ValueError(f"input {t.name!r} of stage {stage} has no source in the ensemble graph")
            out.append(self.source(call.feeds[t.name], direct=stage is self.stage))
        return out

    def source(self, name: str, direct: bool) -> Feed | None:
        if name == "mask":
            return lambda b: b["mask"]
        if name not in {s.value for s in Stage}:
            raise ValueError(f"training {self.stage} would need {name!r}, which the training data lacks")
        up = Stage(name)
        if not spec(up).trained:
            self.sources.add(up)
            return lambda b: b[up.value]
        if up not in self.frozen:
            if direct and _passes_through(up):
                image = next(t.name for t in spec(up).inputs if t.role is Role.IMAGE)
                inner = _GRAPH[up].feeds[image]
                self.notes.append(
                    f"no {spec(up).weights_flag} given: the {self.stage} learns from {inner}'s output "
                    f"without the {up}"
                )
                return self.source(inner, direct=False)
            self.missing.add(up)
            self.inputs(up)  # to name every missing file at once
            return None
        module = _frozen_stage(up, self.frozen[up], self.device)
        args = self.inputs(up)
        return lambda b: module(*(a(b) for a in args))


def _frozen_stage(stage: Stage, path: Path, device: torch.device) -> nn.Module:
    from trt_inpaint.models.stages import build_stage

    return build_stage(stage, load_trained(stage, path)).to(device).eval()


def make_task(
    stage: Stage,
    arch: Arch,
    loss: nn.Module,
    device: torch.device,
    frozen: Mapping[Stage, Path] | None = None,
) -> Task:
    """Build the model (after the caller seeded torch) and the input recipe for the trained ``stage``:
    its inputs come from the ensemble graph (``spec.PIPELINES``), with the trained upstream stages'
    weights in ``frozen`` (stage -> file) applied frozen on the fly."""
    from trt_inpaint.models.stages import build_stage

    _trained_row(stage)
    recipe = _Recipe(stage, dict(frozen or {}), device)
    feeds = recipe.inputs(stage)
    order = list(Stage)
    if recipe.missing:
        flags = [spec(s).weights_flag for s in sorted(recipe.missing, key=order.index)]
        raise InputError(f"training {stage} needs the trained {' and '.join(flags)} weights")
    model = new_model(stage, arch).to(device)

    def inputs(b: dict[str, Tensor]) -> tuple[Tensor, ...]:
        with torch.no_grad():  # the inputs are data: frozen stages build no graph
            return tuple(f(b) for f in feeds)

    return Task(
        stage=stage,
        model=model,
        wrapper=build_stage(stage, model),
        sources=tuple(s.value for s in sorted(recipe.sources, key=order.index)),
        inputs=inputs,
        loss=loss,
        metadata=model_metadata(stage, model, arch),
        notes=recipe.notes,
    )
