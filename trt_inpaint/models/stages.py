"""The five ensemble stages behind ONE boundary convention, and the ensemble that chains them.

Every wrapper's forward takes the inputs of ``spec(stage).inputs`` in that order as positional tensors and
returns the stage output: RGB float in [0, 1], NCHW, mask (N, 1, H, W) with 1 = hole, and
``output = mask * prediction + (1 - mask) * image`` so known pixels pass through unchanged. Conversions to
a model's own convention (MAT: [-1, 1], 1 = known) happen here, so the exporter and every runtime backend
share them. ``run_pipeline`` walks ``spec.PIPELINES`` generically; ``Ensemble`` is the paper's
Y = FinalDenoiser(Combiner(LamaDenoiser(LaMa(X)), MAT(X))) at 512x512.

Which wrapper, model constructor and checkpoint loader serve a stage is written in the spec's stage table
(``spec.STAGES[stage].torch``, by name); this module resolves those names, the one place that does.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import PIPELINES, STAGES, Pipeline, Role, Stage, random_feeds, spec
from trt_inpaint.models.init import deterministic_init_


def composite(prediction: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """mask * prediction + (1 - mask) * image: hole pixels (mask 1) from the prediction, the rest kept."""
    return mask * prediction + (1 - mask) * image


class LamaStage(nn.Module):
    """image, mask -> LaMa's sigmoid prediction on cat(image * (1 - mask), mask), composited."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        prediction = self.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return composite(prediction, image, mask)


class DenoiserStage(nn.Module):
    """image, mask -> denoiser(image), composited (the LaMa denoiser and the final denoiser)."""

    def __init__(self, denoiser: nn.Module):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return composite(self.denoiser(image), image, mask)


def _noise_crops(generator: nn.Module) -> dict[str, tuple[int, ...] | None]:
    """Per noise input: the generator's smaller shape (without batch) to crop the spec's tensor to, or None.

    A reduced MAT (tests) takes fewer noise channels than the spec's full-size boundary; cropping keeps one
    stage signature for every model size (the crop of N(0, 1) or Bernoulli draws has the same law).
    """
    own = generator.noise_shapes() if hasattr(generator, "noise_shapes") else {}
    crops: dict[str, tuple[int, ...] | None] = {}
    for t in spec(Stage.MAT).inputs:
        if t.role is not Role.NOISE:
            continue
        full, want = tuple(t.shape[1:]), tuple(own.get(t.name, t.shape[1:]))
        if len(want) != len(full) or any(w > f for w, f in zip(want, full, strict=True)):
            raise ValueError(f"MAT generator wants {t.name} of shape {want}; the stage boundary gives {full}")
        crops[t.name] = None if want == full else want
    return crops


def _crop(x: Tensor, shape: tuple[int, ...] | None) -> Tensor:
    return x if shape is None else x[(slice(None), *(slice(0, n) for n in shape))]


class MatStage(nn.Module):
    """image, mask, z, token_keep, feature_keep -> MAT's prediction, composited.

    Inside: images = image * 2 - 1, masks = 1 - mask (1 = known), output (x + 1) / 2 clamped to [0, 1].
    The noise inputs have the spec's full-size shapes; a reduced generator gets leading crops of them.
    """

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator
        self._crops = _noise_crops(generator)

    def forward(
        self, image: Tensor, mask: Tensor, z: Tensor, token_keep: Tensor, feature_keep: Tensor
    ) -> Tensor:
        c = self._crops
        z, token_keep = _crop(z, c["z"]), _crop(token_keep, c["token_keep"])
        feature_keep = _crop(feature_keep, c["feature_keep"])
        out = self.generator(image * 2 - 1, 1 - mask, z, token_keep, feature_keep)
        prediction = ((out + 1) * 0.5).clamp(0.0, 1.0)
        return composite(prediction, image, mask)


class CombinerStage(nn.Module):
    """lama_image, mat_image, mask -> combiner(lama_image, mat_image, mask), composited over lama_image."""

    def __init__(self, combiner: nn.Module):
        super().__init__()
        self.combiner = combiner

    def forward(self, lama_image: Tensor, mat_image: Tensor, mask: Tensor) -> Tensor:
        return composite(self.combiner(lama_image, mat_image, mask), lama_image, mask)


def _wrapper(stage: Stage) -> type[nn.Module]:
    name = STAGES[stage].torch.wrapper
    cls = globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"spec.STAGES[{stage.value}] names wrapper {name!r}, which models/stages.py lacks")
    return cls


# stage -> its wrapper class, from the spec's stage table
STAGE_WRAPPERS: dict[Stage, type[nn.Module]] = {s: _wrapper(s) for s in STAGES}


def build_stage(stage: Stage | str, model: nn.Module) -> nn.Module:
    """Wrap the underlying model (LaMa/MAT generator, denoiser, combiner) as the stage ``stage``."""
    return STAGE_WRAPPERS[Stage(stage)](model)


# ---- the stage graph -----------------------------------------------------------------------------------


def _checking_sizes() -> bool:
    return not (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling())


def run_pipeline(
    stages: Mapping[Stage | str, nn.Module],
    pipeline: Pipeline | str,
    image: Tensor,
    mask: Tensor,
    noise: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Run ``spec.PIPELINES[pipeline]`` with the stage modules ``stages`` (wrappers, keyed by Stage or name).

    Feeds resolve by source name: "image" / "mask" are the working inputs, any other source is the output
    of the earlier stage of that name; NOISE inputs come from ``noise`` by input name. Returns every source
    by name ("image", "mask" and one entry per stage value); the last call's stage holds the final output.
    Raises InputError if the image size does not suit a stage.
    """
    noise = noise or {}
    stages = {Stage(k): m for k, m in stages.items()}
    calls = PIPELINES[Pipeline(pipeline)]
    for call in calls:
        if call.stage not in stages:
            given = ", ".join(s.value for s in stages) or "none"
            raise ValueError(f"pipeline {pipeline} needs stage {call.stage.value}; given: {given}")
    if _checking_sizes():  # every stage before any runs
        for call in calls:
            try:
                spec(call.stage).check_size(int(image.shape[-2]), int(image.shape[-1]))
            except ValueError as err:
                raise InputError(str(err)) from None
    results: dict[str, Tensor] = {"image": image, "mask": mask}
    for call in calls:
        s = spec(call.stage)
        args = []
        for t in s.inputs:
            if t.name in call.feeds:
                args.append(results[call.feeds[t.name]])
            elif t.role is Role.NOISE:
                if t.name not in noise:
                    raise ValueError(
                        f"stage {s.name} needs the noise input {t.name!r} (see spec.random_feeds)"
                    )
                args.append(noise[t.name])
            else:
                raise ValueError(f"pipeline {pipeline} gives no feed for input {t.name!r} of stage {s.name}")
        results[s.name] = stages[call.stage](*args)
    return results


def pipeline_output(pipeline: Pipeline | str) -> str:
    """The source name holding a pipeline's final output (its last stage)."""
    return PIPELINES[Pipeline(pipeline)][-1].stage.value


_NOISE_NAMES = tuple(t.name for t in spec(Stage.MAT).inputs if t.role is Role.NOISE)


class Ensemble(nn.Module):
    """The five stage wrappers; forward(image, mask, z, token_keep, feature_keep) at 512x512 -> output."""

    pipeline = Pipeline.ENSEMBLE

    def __init__(self, stages: Mapping[Stage, nn.Module]):
        super().__init__()
        wanted = [c.stage for c in PIPELINES[self.pipeline]]
        missing = [s.value for s in wanted if s not in stages]
        if missing:
            raise ValueError(f"Ensemble needs stages {', '.join(missing)}")
        self.stages = nn.ModuleDict({s.value: stages[s] for s in wanted})

    @classmethod
    def from_models(cls, models: Mapping[Stage, nn.Module]) -> Ensemble:
        """From the underlying models (generators, denoisers, combiner), wrapping each with build_stage."""
        return cls({Stage(s): build_stage(s, m) for s, m in models.items()})

    def forward(
        self, image: Tensor, mask: Tensor, z: Tensor, token_keep: Tensor, feature_keep: Tensor
    ) -> Tensor:
        noise = dict(zip(_NOISE_NAMES, (z, token_keep, feature_keep), strict=True))
        return run_pipeline(self.stages, self.pipeline, image, mask, noise)[pipeline_output(self.pipeline)]


# ---- the underlying models: constructed, loaded from a file, or seeded random (--random-init, tests) ------


def _model_module(stage: Stage):
    return importlib.import_module(f"trt_inpaint.models.{STAGES[Stage(stage)].torch.module}")


def stage_model(stage: Stage | str, tiny: bool = False) -> nn.Module:
    """The underlying model of ``stage`` with constructor-default weights (full size, or tiny for tests)."""
    names = STAGES[Stage(stage)].torch
    return getattr(_model_module(stage), names.tiny if tiny else names.full)()


def load_stage_model(stage: Stage | str, path: str | Path) -> nn.Module:
    """The underlying model of ``stage`` from the weights file ``path`` (its checkpoint loader), in eval mode.
    Raises CheckpointError naming the file when it does not fit."""
    from trt_inpaint.models import checkpoints

    return getattr(checkpoints, STAGES[Stage(stage)].torch.loader)(path).eval()


def load_stage(stage: Stage | str, path: str | Path) -> nn.Module:
    """``build_stage`` around ``load_stage_model``, in eval mode."""
    return build_stage(stage, load_stage_model(stage, path)).eval()


def random_stage_model(stage: Stage | str, seed: int = 0, tiny: bool = False) -> nn.Module:
    """The underlying model of ``stage`` filled by ``deterministic_init_(seed)``, in eval mode.

    The same (stage, seed, tiny) always gives the same weights; both denoisers get identical weights for
    one seed (same keys), which every consumer (exporter, torch backend) reproduces alike.
    """
    model = stage_model(stage, tiny)
    rule = getattr(_model_module(stage), "random_init_", deterministic_init_)  # a model file may refine it
    rule(model, seed)
    return model.eval()


def random_stage(stage: Stage | str, seed: int = 0, tiny: bool = False) -> nn.Module:
    """``build_stage`` around ``random_stage_model``."""
    return build_stage(stage, random_stage_model(stage, seed, tiny)).eval()


def random_ensemble(seed: int = 0, tiny: bool = False) -> Ensemble:
    return Ensemble({s: random_stage(s, seed, tiny) for s in STAGES}).eval()


def example_inputs(
    stage: Stage | str, batch: int = 1, height: int = 512, width: int = 512, seed: int = 0
) -> tuple[Tensor, ...]:
    """Inputs for ``stage`` in spec order: images uniform in [0, 1], a 0/1 mask (about a third holes,
    in blocks of 8 pixels), NOISE inputs from ``spec.random_feeds``. For tests and export tracing."""
    s = spec(stage)
    rng = np.random.default_rng(seed)
    noise = random_feeds(s.stage, batch, seed)
    out = []
    for t in s.inputs:
        shape = t.concrete(batch, height, width)
        if t.role is Role.IMAGE:
            x = rng.random(shape, dtype=np.float32)
        elif t.role is Role.MASK:
            coarse = rng.random((batch, 1, -(-height // 8), -(-width // 8))) < 1 / 3
            x = coarse.repeat(8, axis=2).repeat(8, axis=3)[:, :, :height, :width].astype(np.float32)
        else:
            x = noise[t.name]
        out.append(torch.from_numpy(np.array(x, dtype=np.float32)))  # a writable copy
    return tuple(out)
