"""Restricted unpickling: weights come out, nothing a file names is ever run."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models.tensor_helpers import same, seeded_
from trt_inpaint.errors import CheckpointError
from trt_inpaint.models import safe_pickle
from trt_inpaint.models.checkpoints import read_state_dict

# A stand-in for StyleGAN2-ADA's torch_utils/persistence.py that behaves like the official loader: it
# exec's the module source embedded in the pickle. Written by the test into a temp folder on sys.path.
PERSISTENCE_MODULE = """
import types

def _reconstruct_persistent_obj(meta):
    module = types.ModuleType("_imported_module_trt_inpaint_test")
    exec(meta["module_src"], module.__dict__)
    cls = module.__dict__[meta["class_name"]]
    obj = cls.__new__(cls)
    obj.__dict__.update(meta["state"])
    return obj
"""

EMBEDDED_SOURCE = """
import pathlib
pathlib.Path({marker!r}).write_text("embedded module source was executed")

class FullyConnectedLayer: pass
class MappingNetwork: pass
class SynthesisBlock: pass
class SynthesisNetwork: pass
class Generator: pass
class Discriminator: pass
"""


def _module_dict(params=None, buffers=None, modules=None, non_persistent=()) -> dict:
    """The ``__dict__`` an nn.Module pickles (the parts we read, plus the usual noise)."""

    def param(v):
        return None if v is None else torch.nn.Parameter(v.detach().clone(), requires_grad=False)

    return {
        "training": False,
        "_parameters": OrderedDict((k, param(v)) for k, v in (params or {}).items()),
        "_buffers": OrderedDict((k, None if v is None else v.clone()) for k, v in (buffers or {}).items()),
        "_non_persistent_buffers_set": set(non_persistent),
        "_modules": OrderedDict(modules or {}),
        "_forward_hooks": OrderedDict(),
        "_init_args": (),
        "_init_kwargs": {"w_dim": 4},
    }


class _Persistent:
    """Pickles exactly like a ``@persistence.persistent_class`` instance."""

    def __init__(self, reconstruct, class_name: str, state: dict, source: str):
        self.reconstruct, self.class_name, self.state, self.source = reconstruct, class_name, state, source

    def __reduce__(self):
        meta = dict(
            type="class", version=6, module_src=self.source, class_name=self.class_name, state=self.state
        )
        return (self.reconstruct, (meta,))


def _generator(reconstruct, source: str, scale: float) -> tuple[_Persistent, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(int(scale * 10))
    w = {name: torch.randn(shape, generator=g) * scale for name, shape in {
        "fc0.weight": (4, 3), "fc0.bias": (4,), "fc1.weight": (4, 4), "fc1.bias": (4,), "w_avg": (4,),
        "const": (2, 4, 4), "noise_const": (4, 4), "cache": (3,), "torgb.weight": (3, 2), "torgb.bias": (3,),
    }.items()}  # fmt: skip

    def P(class_name, state):
        return _Persistent(reconstruct, class_name, state, source)

    fc0 = P("FullyConnectedLayer", _module_dict({"weight": w["fc0.weight"], "bias": w["fc0.bias"]}))
    fc1 = P("FullyConnectedLayer", _module_dict({"weight": w["fc1.weight"], "bias": w["fc1.bias"]}))
    mapping = P(
        "MappingNetwork", _module_dict(buffers={"w_avg": w["w_avg"]}, modules={"fc0": fc0, "fc1": fc1})
    )
    b4 = P(
        "SynthesisBlock",
        _module_dict(
            {"const": w["const"]},
            {"noise_const": w["noise_const"], "cache": w["cache"]},
            non_persistent={"cache"},
        ),
    )
    torgb = torch.nn.Linear(2, 3)  # a plain torch module inside a persistent one: pickled natively
    with torch.no_grad():
        torgb.weight.copy_(w["torgb.weight"])
        torgb.bias.copy_(w["torgb.bias"])
    synthesis = P("SynthesisNetwork", _module_dict(modules={"b4": b4, "torgb": torgb, "unused": None}))
    gen = P("Generator", _module_dict(modules={"mapping": mapping, "synthesis": synthesis}))
    expected = {
        "mapping.w_avg": w["w_avg"],
        "mapping.fc0.weight": w["fc0.weight"],
        "mapping.fc0.bias": w["fc0.bias"],
        "mapping.fc1.weight": w["fc1.weight"],
        "mapping.fc1.bias": w["fc1.bias"],
        "synthesis.b4.const": w["const"],
        "synthesis.b4.noise_const": w["noise_const"],
        "synthesis.torgb.weight": w["torgb.weight"],
        "synthesis.torgb.bias": w["torgb.bias"],
    }
    return gen, expected


def _forget_persistence_module() -> None:
    """The loader must not need (nor use) the module: drop it from the import cache, keep it importable."""
    for name in [m for m in sys.modules if m == "torch_utils" or m.startswith("torch_utils.")]:
        del sys.modules[name]


@pytest.fixture
def persistence(tmp_path, monkeypatch):
    """An importable stand-in for torch_utils.persistence (as on a machine with the MAT repo on sys.path)
    and the embedded source that creates ``marker`` if anything executes it."""
    for name in [m for m in sys.modules if m == "torch_utils" or m.startswith("torch_utils.")]:
        monkeypatch.delitem(sys.modules, name)  # a real one imported elsewhere comes back afterwards
    pkg = tmp_path / "site" / "torch_utils"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "persistence.py").write_text(PERSISTENCE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    import torch_utils.persistence as module

    marker = tmp_path / "EXECUTED"
    yield module._reconstruct_persistent_obj, EMBEDDED_SOURCE.format(marker=str(marker)), marker
    _forget_persistence_module()


@pytest.fixture
def persistence_pkl(tmp_path, persistence):
    """A MAT-style network pickle whose embedded source would create ``marker`` if executed."""
    reconstruct, source, marker = persistence
    g_ema, expected = _generator(reconstruct, source, 1.0)
    g, _ = _generator(reconstruct, source, 2.0)
    d = _Persistent(reconstruct, "Discriminator", _module_dict({"w": torch.ones(2)}), source)
    data = {"G": g, "D": d, "G_ema": g_ema, "augment_pipe": None, "training_set_kwargs": {"resolution": 512}}
    path = tmp_path / "Places_512_tiny.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    _forget_persistence_module()
    return path, marker, expected


def test_persistence_pickle_loads_weights_without_executing_source(persistence_pkl):
    path, marker, expected = persistence_pkl
    state_dict = safe_pickle.load_persistence_pickle(path)
    assert not marker.exists(), "embedded module source was executed"
    assert sorted(state_dict) == sorted(expected)  # non-persistent buffer 'cache' left out, G_ema not G
    for key, value in expected.items():
        same(state_dict[key], value)
    assert read_state_dict(path).keys() == expected.keys()
    assert not marker.exists()


def test_persistence_fixture_is_dangerous_with_an_unrestricted_loader(persistence_pkl):
    """Control: the same bytes DO run the embedded source through plain pickle (our own test file)."""
    path, marker, _ = persistence_pkl
    pickle.loads(path.read_bytes())  # noqa: S301 - deliberate, on the test's own fixture only
    assert marker.exists()


def test_persistent_stub_records_meta_but_keeps_source_as_text(persistence_pkl):
    path, marker, _ = persistence_pkl
    data = safe_pickle.load_pickle(path)
    g_ema = data["G_ema"]
    assert isinstance(g_ema, safe_pickle.PersistentObject)
    assert g_ema.class_name == "Generator"
    assert "write_text" in g_ema.meta["module_src"]
    assert data["training_set_kwargs"] == {"resolution": 512}
    assert not marker.exists()


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)

    def __call__(self, *args):  # only so pickle accepts an _Evil as the callable of another _Evil
        raise AssertionError("never called while pickling")


def _evil_calls(marker: Path):
    write = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    return {
        "os.system": _Evil(os.system, f"echo pwned > '{marker}'"),
        "builtins.eval": _Evil(builtins.eval, write),
        "builtins.exec": _Evil(builtins.exec, write),
        "subprocess.call": _Evil(subprocess.call, ["touch", str(marker)]),
        # getattr(__import__("os"), "system")(cmd): a chain of reduces
        "chained": _Evil(
            _Evil(builtins.getattr, _Evil(builtins.__import__, "os"), "system"), f"touch '{marker}'"
        ),
    }


@pytest.mark.parametrize(
    "name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.call", "chained"]
)
def test_hostile_reduce_is_never_called(tmp_path, name):
    marker = tmp_path / "PWNED"
    evil = _evil_calls(marker)[name]
    weights = {"conv.weight": torch.randn(2, 3), "conv.bias": torch.randn(2)}
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps({"state_dict": weights, "payload": evil}, protocol=2))

    loaded = read_state_dict(path)
    assert not marker.exists()
    assert loaded.keys() == weights.keys()
    for key in weights:
        same(loaded[key], weights[key])
    stub = safe_pickle.load_pickle(path)["payload"]
    assert isinstance(stub, safe_pickle.PickledObject)
    assert stub.args[-len(evil.args) :] == tuple(evil.args)  # recorded, not called
    assert isinstance(stub, safe_pickle.PickledCall) == (name == "chained")

    only_evil = tmp_path / "only_evil.pkl"
    only_evil.write_bytes(pickle.dumps(evil, protocol=4))
    with pytest.raises(CheckpointError, match="only_evil.pkl"):
        read_state_dict(only_evil)
    assert not marker.exists()


def test_hostile_legacy_bytes_inside_load_from_bytes_are_refused(tmp_path):
    """A torch 'storage' whose legacy bytes hold os.system: torch.load(weights_only=True) refuses it."""
    marker = tmp_path / "PWNED"
    buf = io.BytesIO()
    torch.save(_Evil(os.system, f"echo pwned > '{marker}'"), buf, _use_new_zipfile_serialization=False)
    from torch.storage import _load_from_bytes

    path = tmp_path / "storage_bomb.pkl"
    path.write_bytes(pickle.dumps(_Evil(_load_from_bytes, buf.getvalue()), protocol=4))
    with pytest.raises(CheckpointError, match="storage_bomb.pkl") as err:
        safe_pickle.load_pickle(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_find_class_allowlist():
    up = safe_pickle.RestrictedUnpickler(io.BytesIO(b""))
    assert up.find_class("torch._utils", "_rebuild_tensor_v2") is torch._utils._rebuild_tensor_v2
    assert up.find_class("collections", "OrderedDict") is OrderedDict
    assert up.find_class("torch", "float16") is torch.float16
    assert up.find_class("torch", "FloatStorage").dtype == torch.float32
    assert up.find_class("torch.storage", "_load_from_bytes") is safe_pickle._safe_load_from_bytes
    refused = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "getattr")]
    refused += [
        ("torch", "load"),
        ("torch_utils.persistence", "_reconstruct_persistent_obj"),
        ("numpy", "load"),
    ]
    for module, name in refused:
        stub = up.find_class(module, name)
        assert issubclass(stub, safe_pickle.PickledObject), (module, name)
    assert issubclass(
        up.find_class("x.persistence", "_reconstruct_persistent_obj"), safe_pickle.PersistentObject
    )
    assert "os.system" in up.stubbed


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_pickles_of_tensors_and_numpy(tmp_path, protocol):
    t = torch.randn(3, 4)
    data = {
        "w": t,
        "half": torch.arange(6, dtype=torch.float16).reshape(2, 3)[:, 1:],  # a view with an offset
        "p": torch.nn.Parameter(torch.ones(2)),
        "arr": np.arange(5, dtype=np.float32),
        "scalar": np.float32(1.5),
        "misc": (frozenset({1}), slice(1, 2), complex(1, 2), b"\x00\xff"),
    }
    path = tmp_path / f"plain_{protocol}.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = safe_pickle.load_pickle(path)
    same(loaded["w"], t)
    same(loaded["half"], data["half"])
    assert isinstance(loaded["p"], torch.nn.Parameter)
    np.testing.assert_array_equal(loaded["arr"], data["arr"])
    assert loaded["scalar"] == np.float32(1.5)
    assert loaded["misc"] == data["misc"]


def _persist(reconstruct, source: str, module: torch.nn.Module) -> _Persistent:
    """A real nn.Module tree in StyleGAN2-ADA persistence form (every module a persistent object)."""
    children = {
        n: None if c is None else _persist(reconstruct, source, c) for n, c in module._modules.items()
    }
    state = _module_dict(module._parameters, module._buffers, children, module._non_persistent_buffers_set)
    return _Persistent(reconstruct, type(module).__name__, state, source)


def test_load_mat_from_official_style_pickle(tmp_path, persistence):
    from trt_inpaint.models import mat
    from trt_inpaint.models.checkpoints import load_mat

    reconstruct, source, marker = persistence
    reference = seeded_(mat.mat_tiny(), seed=2)
    other = torch.nn.Linear(2, 2)
    data = {"G": _persist(reconstruct, source, other), "G_ema": _persist(reconstruct, source, reference)}
    data.update(D=_persist(reconstruct, source, other), augment_pipe=None)
    path = tmp_path / "Places_512_FullData_tiny.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    _forget_persistence_module()

    model = load_mat(path, **mat.TINY)
    assert not marker.exists()
    assert not model.training
    expected = reference.state_dict()
    assert sorted(model.state_dict()) == sorted(expected)
    for key, value in model.state_dict().items():
        same(value, expected[key])
    with pytest.raises(CheckpointError) as err:  # raised by mat's filter, which does not know the path
        load_mat(path, **dict(mat.TINY, w_dim=32))
    assert "Places_512_FullData_tiny.pkl" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "target",
    [b"ctorch._tensor\nTensor\n", b"ctorch._utils\n_rebuild_tensor_v2\n", b"ccollections\nOrderedDict\n"],
)
def test_build_cannot_set_attributes_on_allowlisted_globals(tmp_path, target):
    """BUILD with slot state would ``setattr`` on the class/function itself: refused, nothing changed."""
    attr = b"__defaults__" if b"rebuild" in target else b"add"
    # GLOBAL target; state = (None, {attr: 1}); BUILD; STOP
    data = b"\x80\x02" + target + b"N}X" + len(attr).to_bytes(4, "little") + attr + b"K\x01s\x86b."
    path = tmp_path / "tamper.pkl"
    path.write_bytes(data)
    before = {
        "add": torch.Tensor.add,
        "defaults": torch._utils._rebuild_tensor_v2.__defaults__,
        "od": getattr(OrderedDict, "add", None),
    }
    with pytest.raises(CheckpointError, match="refusing to set the state"):
        safe_pickle.load_pickle(path)
    assert torch.Tensor.add is before["add"]
    assert torch._utils._rebuild_tensor_v2.__defaults__ == before["defaults"]
    assert getattr(OrderedDict, "add", None) is before["od"]


class _PlainModule:
    """Pickles like an nn.Module without persistence: NEWOBJ + BUILD(__dict__)."""


def test_cyclic_module_tree_is_a_checkpoint_error(tmp_path):
    m = _PlainModule()
    m.__dict__.update(
        _parameters=OrderedDict(w=torch.ones(1)), _buffers=OrderedDict(), _modules=OrderedDict()
    )
    m._modules["again"] = m  # a cycle: only a crafted file does this
    path = tmp_path / "cycle.pkl"
    path.write_bytes(pickle.dumps({"model": m}, protocol=4))
    with pytest.raises(CheckpointError, match="cycle.pkl.*deeper than 100"):
        read_state_dict(path)
