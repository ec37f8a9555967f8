"""Checkpoint reading, strict loading with clear errors, safetensors saving, model loaders."""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import uuid
import zipfile
from collections import OrderedDict

import pytest
import torch
from torch import nn

from tests.models.tensor_helpers import same, seeded_
from trt_inpaint.errors import CheckpointError
from trt_inpaint.models import checkpoints, safe_pickle
from trt_inpaint.models.checkpoints import load_checked, read_state_dict, save_safetensors

FOREIGN_MODULE = """
class HParams:
    def __init__(self, **kw):
        self.__dict__.update(kw)

class ModelCheckpoint:
    pass
"""


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def _assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        same(a[key], b[key])


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.fixture
def lightning_ckpt(tmp_path, monkeypatch, request):
    """A Lightning-like checkpoint holding instances of a class whose module no longer exists."""
    name = f"foreign_hparams_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{name}.py").write_text(FOREIGN_MODULE)
    monkeypatch.syspath_prepend(str(site))
    foreign = importlib.import_module(name)
    marker = tmp_path / "PWNED"
    g = torch.Generator().manual_seed(1)
    state_dict = OrderedDict(
        [
            ("generator.model.1.ffc.convl2l.weight", torch.randn(8, 4, 7, 7, generator=g)),
            ("generator.model.2.bn_l.running_mean", torch.randn(8, generator=g)),
            ("generator.model.2.bn_l.num_batches_tracked", torch.tensor(7)),
            ("generator.model.5.half", torch.randn(3, 5, generator=g).half()[:, 1:]),  # offset view, fp16
            ("discriminator.model0.0.weight", torch.randn(4, 3, 4, 4, generator=g)),
            ("loss_resnet_pl.impl.conv1.weight", torch.randn(2, 3, 1, 1, generator=g)),
        ]
    )
    ckpt = {
        "epoch": 3,
        "global_step": 1234,
        "pytorch-lightning_version": "1.2.9",
        "state_dict": state_dict,
        "hyper_parameters": foreign.HParams(lr=1e-3, generator={"kind": "ffc_resnet", "n_blocks": 18}),
        "callbacks": {foreign.ModelCheckpoint: {"best_model_score": torch.tensor(0.25)}},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-3}]}],
        "payload": _RunsCommand(f"echo pwned > '{marker}'"),
    }
    zip_format = getattr(request, "param", True)
    path = tmp_path / ("best.ckpt" if zip_format else "best_legacy.ckpt")
    torch.save(ckpt, path, _use_new_zipfile_serialization=zip_format)
    del sys.modules[name]
    (site / f"{name}.py").unlink()
    return path, state_dict, marker


@pytest.mark.parametrize("lightning_ckpt", [True, False], ids=["zip", "legacy"], indirect=True)
def test_lightning_ckpt_with_foreign_classes_loads_tensors_without_running_them(lightning_ckpt):
    path, expected, marker = lightning_ckpt
    with pytest.raises(pickle.UnpicklingError):  # control: the standard safe path refuses this file
        torch.load(path, map_location="cpu", weights_only=True)
    data = safe_pickle.load_torch_file(path)
    assert not marker.exists()
    _assert_same(dict(data["state_dict"]), dict(expected))
    assert data["global_step"] == 1234
    hp = data["hyper_parameters"]
    assert isinstance(hp, safe_pickle.PickledObject) and hp.state["lr"] == 1e-3
    assert isinstance(data["payload"], safe_pickle.PickledObject)
    _assert_same(read_state_dict(path), dict(expected))
    assert not marker.exists()


def test_plain_torch_files_load_through_weights_only(tmp_path):
    sd = _small_model().state_dict()
    for name, obj in [("plain.pth", sd), ("wrapped.pt", {"params_ema": sd, "params": {"x": torch.ones(1)}})]:
        torch.save(obj, tmp_path / name)
        _assert_same(read_state_dict(tmp_path / name), dict(sd))
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "name": "x"}, tmp_path / "ddp.bin")
    _assert_same(read_state_dict(tmp_path / "ddp.bin"), dict(sd))


def test_big_endian_archive(tmp_path):
    """A torch zip whose byteorder record says 'big' and whose data records are big-endian."""
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.float32)}
    src = tmp_path / "little.pt"
    torch.save(tensors, src)
    dst = tmp_path / "big.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = (
                    torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, 4).flip(1).numpy().tobytes()
                )
            zout.writestr(info.filename, data)
    _assert_same(safe_pickle.read_torch_archive(dst), tensors)
    _assert_same(torch.load(dst, weights_only=True), tensors)  # torch reads the same file the same way


def test_safetensors_round_trip_is_atomic(tmp_path):
    model = _small_model()
    path = tmp_path / "out" / "denoiser.safetensors"
    path.parent.mkdir()
    path.write_bytes(b"old contents")  # overwritten by rename
    save_safetensors(model, path, metadata={"stage": "denoiser"})
    assert sorted(p.name for p in path.parent.iterdir()) == ["denoiser.safetensors"]  # no temp file left
    _assert_same(read_state_dict(path), dict(model.state_dict()))
    tied = {"w": torch.ones(2, 2), "v": None}
    tied["v"] = tied["w"]  # shared storage, which safetensors refuses as is
    save_safetensors(tied, tmp_path / "tied.safetensors")
    _assert_same(
        read_state_dict(tmp_path / "tied.safetensors"), {"w": torch.ones(2, 2), "v": torch.ones(2, 2)}
    )


def _write_bad_files(tmp_path):
    sd = {"w": torch.randn(1000)}
    torch.save(sd, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) * 2 // 3])
    save_safetensors(sd, tmp_path / "full.safetensors")
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(64))
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "notes.pth").write_text("these are not weights\n")
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x04\x95garbage")
    (tmp_path / "folder.pth").mkdir()
    pickle_of_no_tensors = pickle.dumps({"epoch": 1, "name": "x"})
    (tmp_path / "no_tensors.pkl").write_bytes(pickle_of_no_tensors)
    with zipfile.ZipFile(tmp_path / "other.zip.pth", "w") as z:
        z.writestr("readme.txt", "a zip, not a checkpoint")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing.pth", "file not found"),
        ("folder.pth", "not a regular file"),
        ("empty.ckpt", "empty file"),
        ("notes.pth", "not a checkpoint"),
        ("truncated.pth", "zip"),
        ("truncated.safetensors", "safetensors"),
        ("garbage.safetensors", "safetensors"),
        ("broken.pkl", "cannot read pickle"),
        ("no_tensors.pkl", "no tensors"),
        ("other.zip.pth", "PyTorch"),
    ],
)
def test_bad_files_give_one_line_checkpoint_errors(tmp_path, name, problem):
    _write_bad_files(tmp_path)
    with pytest.raises(CheckpointError) as err:
        read_state_dict(tmp_path / name)
    message = str(err.value)
    assert name in message and problem in message
    assert "\n" not in message


def test_load_checked_accepts_a_matching_state_dict(tmp_path):
    source, target = (
        _small_model(),
        nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)),
    )
    assert load_checked(target, source.state_dict(), tmp_path / "x.pth") is target
    _assert_same(target.state_dict(), source.state_dict())


def test_load_checked_names_missing_unexpected_and_mismatched_keys(tmp_path):
    model = _small_model()
    sd = dict(model.state_dict())
    path = tmp_path / "weights.safetensors"

    missing = {k: v for k, v in sd.items() if not k.startswith("1.")}  # drops the 5 BatchNorm entries
    with pytest.raises(CheckpointError) as err:
        load_checked(model, missing, path)
    text = str(err.value)
    assert "weights.safetensors" in text and "missing 5 keys (1.weight, 1.bias, 1.running_mean" in text
    assert "unexpected" not in text and "\n" not in text

    extra = dict(sd, **{f"head.{i}.weight": torch.zeros(1) for i in range(7)})
    with pytest.raises(
        CheckpointError, match=r"unexpected 7 keys \(head\.0\.weight, .*head\.4\.weight, \.\.\.\)"
    ):
        load_checked(model, extra, path)

    wrong = dict(sd, **{"0.weight": torch.zeros(3, 4), "3.bias": torch.zeros(5)})
    with pytest.raises(CheckpointError) as err:
        load_checked(model, wrong, path)
    text = str(err.value)
    assert "shape mismatch for 0.weight: file (3, 4) vs model (8, 4)" in text and "1 more (3.bias)" in text

    both = {k: v for k, v in extra.items() if k != "3.bias"}
    with pytest.raises(CheckpointError, match=r"missing 1 keys \(3\.bias\); unexpected 7 keys"):
        load_checked(model, both, path)
    assert torch.equal(model.state_dict()["0.weight"], sd["0.weight"])  # failed loads leave the model alone


# ---------------------------------------------------------------- the real model loaders (tiny configs)
def test_load_lama_from_lightning_checkpoint(tmp_path, monkeypatch):
    from trt_inpaint.models import lama

    tiny = dict(ngf=8, n_blocks=2, max_features=64)
    reference = seeded_(lama.lama_big(**tiny), seed=3)
    sd = OrderedDict((f"generator.{k}", v) for k, v in reference.state_dict().items())
    sd["discriminator.model0.0.weight"] = torch.zeros(2, 2)
    sd["evaluator.scores.0.weight"] = torch.zeros(1)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "omegaconf_stand_in.py").write_text("class DictConfig:\n    pass\n")
    foreign = importlib.import_module("omegaconf_stand_in")
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": sd, "hyper_parameters": foreign.DictConfig()}, path)
    del sys.modules["omegaconf_stand_in"]
    (tmp_path / "omegaconf_stand_in.py").unlink()

    model = checkpoints.load_lama(path, **tiny)
    assert not model.training
    _assert_same(dict(model.state_dict()), dict(reference.state_dict()))
    with pytest.raises(CheckpointError, match="best.ckpt.*shape mismatch"):
        checkpoints.load_lama(path, ngf=16, n_blocks=2, max_features=64)


@pytest.mark.parametrize(("module_name", "loader", "kw"), [
    ("denoiser", "load_denoiser", {"widths": (8, 8, 16)}),
    ("combiner", "load_combiner", {"widths": (8, 8, 16, 16)}),
])  # fmt: skip
def test_light_model_loaders_round_trip(tmp_path, module_name, loader, kw):
    module = importlib.import_module(f"trt_inpaint.models.{module_name}")
    cls = getattr(module, "Denoiser" if module_name == "denoiser" else "Combiner")
    reference = seeded_(cls(**kw), seed=5)
    path = tmp_path / f"{module_name}.safetensors"
    save_safetensors(reference, path)
    model = getattr(checkpoints, loader)(path, **kw)
    assert not model.training
    _assert_same(dict(model.state_dict()), dict(reference.state_dict()))


@pytest.mark.parametrize("factory", ["denoiser_tiny", "combiner_tiny"])
def test_widths_recorded_by_training_are_used_when_loading(tmp_path, factory):
    """Training writes the constructor widths into the safetensors metadata: weights of a non-default size
    load (and so export) without the caller passing them; a file without them needs the default size."""
    import json

    from trt_inpaint.models import checkpoints, combiner, denoiser

    module = denoiser if factory.startswith("denoiser") else combiner
    model = getattr(module, factory)()
    loader = checkpoints.load_denoiser if module is denoiser else checkpoints.load_combiner
    with_meta = checkpoints.save_safetensors(
        model, tmp_path / "a.safetensors", metadata={"widths": json.dumps(list(model.widths))}
    )
    loaded = loader(with_meta)
    assert tuple(loaded.widths) == tuple(model.widths)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    without = checkpoints.save_safetensors(model, tmp_path / "b.safetensors")
    with pytest.raises(CheckpointError, match="b.safetensors"):
        loader(without)
