"""The stage table (spec.STAGES) is the one source per stage: every stage has its export flag, its wrapper,
model constructors and checkpoint loader, and (when trained here) its training task, all derived from it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from trt_inpaint.errors import CheckpointError, InputError
from trt_inpaint.export import spec as S
from trt_inpaint.export.cli import _weights, parser
from trt_inpaint.models import stages as st
from trt_inpaint.models.checkpoints import save_safetensors
from trt_inpaint.runtime.engines import export_hint
from trt_inpaint.training.losses import MSEOnly
from trt_inpaint.training.tasks import Arch, make_task, model_metadata

ALL = list(S.Stage)
TRAINED = [s for s in ALL if S.spec(s).trained]
CPU = torch.device("cpu")


def test_every_stage_has_one_row():
    assert list(S.STAGES) == ALL and all(row.stage is s for s, row in S.STAGES.items())
    assert TRAINED and len(TRAINED) < len(ALL)  # both kinds exist: pretrained checkpoints and trained here


@pytest.mark.parametrize("stage", ALL)
def test_export_flag(stage, tmp_path):
    row = S.spec(stage)
    p = parser()
    assert row.weights_flag in p._option_string_actions  # the flag exists ...
    args = p.parse_args([row.weights_flag, str(tmp_path / "w")])
    assert _weights(args) == {stage: tmp_path / "w"}  # ... and lands on this stage alone
    assert f"{row.weights_flag} {row.weights_metavar}" in export_hint(tmp_path)


@pytest.mark.parametrize("stage", ALL)
def test_wrapper_and_constructors(stage):
    model = st.stage_model(stage, tiny=True)
    wrapped = st.build_stage(stage, model)
    cls = st.STAGE_WRAPPERS[stage]
    assert type(wrapped) is cls and cls.__name__ == S.spec(stage).torch.wrapper
    assert tuple(inspect.signature(cls.forward).parameters)[1:] == S.spec(stage).input_names
    if not S.spec(stage).fixed_size:  # MAT's full constructor is exercised by the MAT tests
        full = st.stage_model(stage)
        assert sum(p.numel() for p in full.parameters()) > sum(p.numel() for p in model.parameters())


def _save_tiny(stage: S.Stage, path: Path, seed: int = 0) -> Path:
    model = st.random_stage_model(stage, seed=seed, tiny=True)
    meta = model_metadata(stage, model, Arch.TINY) if S.spec(stage).trained else None
    return save_safetensors(model, path, metadata=meta)


@pytest.mark.parametrize("stage", TRAINED)
def test_loader_round_trip_of_trained_stages(stage, tmp_path):
    saved = st.random_stage_model(stage, seed=4, tiny=True).state_dict()
    loaded = st.load_stage_model(stage, _save_tiny(stage, tmp_path / "w.safetensors", seed=4)).state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)


@pytest.mark.parametrize("stage", [s for s in ALL if s not in TRAINED])
def test_loader_of_pretrained_stages_reads_the_full_size_model(stage, tmp_path):
    """A tiny model's weights do not fit the full-size model its loader builds: the error names the file."""
    path = _save_tiny(stage, tmp_path / "tiny.safetensors")
    with pytest.raises(CheckpointError) as err:
        st.load_stage_model(stage, path)
    assert err.value.path == path


def _batch(task, n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    b = {src: torch.rand(n, 3, size, size, generator=g) for src in task.sources}
    b["mask"] = (torch.rand(n, 1, size, size, generator=g) < 0.3).float()
    return b


@pytest.mark.parametrize("stage", ALL)
def test_training_task(stage, tmp_path):
    if stage not in TRAINED:
        with pytest.raises(ValueError, match="not trained here"):
            make_task(stage, Arch.TINY, MSEOnly(), CPU)
        return
    frozen = {s: _save_tiny(s, tmp_path / f"{s.value}.safetensors") for s in TRAINED if s is not stage}
    task = make_task(stage, Arch.TINY, MSEOnly(), CPU, frozen)
    assert task.sources and all(not S.spec(S.Stage(src)).trained for src in task.sources)
    b = _batch(task)
    out = task.wrapper(*task.inputs(b))
    assert out.shape == (2, 3, 32, 32) and out.requires_grad
    assert task.notes == []


def test_final_denoiser_inputs_run_the_frozen_upstream_graph(tmp_path):
    ld = _save_tiny(S.Stage.LAMA_DENOISER, tmp_path / "ld.safetensors", seed=1)
    cb = _save_tiny(S.Stage.COMBINER, tmp_path / "cb.safetensors", seed=2)
    frozen = {S.Stage.LAMA_DENOISER: ld, S.Stage.COMBINER: cb}
    task = make_task(S.Stage.FINAL_DENOISER, Arch.TINY, MSEOnly(), CPU, frozen)
    assert task.sources == ("lama", "mat")
    b = _batch(task)
    with torch.no_grad():
        want = st.load_stage(S.Stage.COMBINER, cb)(
            st.load_stage(S.Stage.LAMA_DENOISER, ld)(b["lama"], b["mask"]), b["mat"], b["mask"]
        )
    got = task.inputs(b)
    assert len(got) == 2 and torch.equal(got[0], want) and torch.equal(got[1], b["mask"])


def test_missing_upstream_weights(tmp_path):
    combiner = make_task(S.Stage.COMBINER, Arch.TINY, MSEOnly(), CPU)  # a direct refinement may be left out
    assert combiner.sources == ("lama", "mat") and "no --lama-denoiser given" in combiner.notes[0]
    b = _batch(combiner)
    assert torch.equal(combiner.inputs(b)[0], b["lama"])
    with pytest.raises(InputError, match="needs the trained --lama-denoiser and --combiner weights"):
        make_task(S.Stage.FINAL_DENOISER, Arch.TINY, MSEOnly(), CPU)
    cb = _save_tiny(S.Stage.COMBINER, tmp_path / "cb.safetensors")
    with pytest.raises(InputError, match="needs the trained --lama-denoiser weights"):  # below a frozen stage
        make_task(S.Stage.FINAL_DENOISER, Arch.TINY, MSEOnly(), CPU, {S.Stage.COMBINER: cb})
