"""Restricted unpickling: read tensors out of pickles and PyTorch files without running code they name.

``RestrictedUnpickler.find_class`` resolves only a small allowlist (OrderedDict, torch tensor/parameter
rebuild functions, storage types, dtypes, a few builtins and numpy array/scalar reconstructors). Every
other global (StyleGAN2-ADA ``_reconstruct_persistent_obj``, ``os.system``, unknown classes, ...) becomes
an inert :class:`PickledObject` subclass that only records the arguments, state and items it was given.
Nothing named by a file is ever called, and embedded module source is never executed.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trt_inpaint.errors import CheckpointError

ZIP_MAGIC = b"PK\x03\x04"
# torch.save legacy format begins with the pickled magic number 0x1950a86a20f9469cfc6c (protocol 2).
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
PERSISTENT_RECONSTRUCTOR = "_reconstruct_persistent_obj"


# ---------------------------------------------------------------------------------------------- stubs
class PickledObject:
    """Inert record of an object a pickle asked to build. ``pickled_module``/``pickled_name`` name the
    global; ``args``/``kwargs`` are what it would have been called with; ``state`` is what BUILD passed;
    ``items``/``list_items`` collect SETITEMS/APPENDS. No behaviour of the original is reproduced."""

    pickled_module: str = "?"
    pickled_name: str = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledObject:
        obj = object.__new__(cls)
        obj.args = args
        obj.kwargs = kwargs
        obj.state = None
        obj.items = {}
        obj.list_items = []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls cls(*args): record only
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Any) -> None:
        self.list_items.extend(values)

    def add(self, value: Any) -> None:
        self.list_items.append(value)

    def __call__(self, *args: Any, **kwargs: Any) -> PickledObject:
        """A pickle calling what a stub returned (``getattr(x, 'y')(...)``): record that too."""
        return PickledCall(self, *args, **kwargs)

    @classmethod
    def qualified_name(cls) -> str:
        return f"{cls.pickled_module}.{cls.pickled_name}"

    def __repr__(self) -> str:
        return f"<stub {self.qualified_name()}>"


class PersistentObject(PickledObject):
    """Record of a StyleGAN2-ADA persistence object: ``_reconstruct_persistent_obj(meta)``. The embedded
    ``meta['module_src']`` is kept as text and never executed."""

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = self.args[0] if self.args else {}
        return as_mapping(meta) or {}

    @property
    def class_name(self) -> str:
        return str(self.meta.get("class_name", "?"))

    @property
    def module_state(self) -> Mapping[str, Any] | None:
        return as_mapping(self.meta.get("state"))

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


class PickledCall(PickledObject):
    """Record of a call on a stub instance: ``args[0]`` is the stub, the rest its arguments."""

    pickled_name = "<call>"


def as_mapping(obj: Any) -> Mapping[str, Any] | None:
    """A dict, or what a stub holds as one (SETITEMS of a stubbed dict subclass such as EasyDict, or a
    BUILD state dict / (dict, slotstate) pair), or None. Never recurses, so cycles are harmless."""
    if isinstance(obj, PickledObject):
        obj = obj.items or obj.state
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], Mapping):  # (dict, slotstate)
        return obj[0]
    return None


# ------------------------------------------------------------------------------------------ allowlist
def _safe_load_from_bytes(data: bytes) -> Any:
    """Replacement for ``torch.storage._load_from_bytes``: legacy torch.save bytes, weights_only."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("_load_from_bytes expects bytes")
    return torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)


def _safe_codecs_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 text to bytes only."""
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() not in (
        "latin1",
        "iso88591",
    ):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1", errors)


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` restricted to stubs and allowlisted builtin classes."""
    if isinstance(cls, type) and issubclass(cls, PickledObject):
        return cls(base, state)
    if cls in (OrderedDict, dict, list, set, frozenset, tuple) and base in (object, cls):
        return cls() if state is None else cls(state)
    raise pickle.UnpicklingError(f"refusing copyreg._reconstructor for {cls!r}")


class StorageKind:
    """What a storage type name in a torch archive means to us: the element dtype."""

    def __init__(self, name: str, dtype: torch.dtype):
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"StorageKind({self.name}, {self.dtype})"


def _storage_kind(name: str) -> StorageKind | None:
    if name == "UntypedStorage":
        return StorageKind(name, torch.uint8)
    try:
        return StorageKind(name, torch.storage._get_dtype_from_pickle_storage_type(name))
    except (AttributeError, KeyError):
        cls = getattr(torch, name, None)
        dtype = getattr(cls, "dtype", None)
        return StorageKind(name, dtype) if isinstance(dtype, torch.dtype) else None


def _numpy_attr(module: str, name: str) -> Callable[[], Any]:
    """numpy 2 moved ``numpy.core`` to ``numpy._core``; pickles name either."""

    def get() -> Any:
        import importlib

        for candidate in (
            module.replace("numpy.core.", "numpy._core."),
            module.replace("numpy._core.", "numpy.core."),
        ):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"numpy has no {module}.{name}")

    return get


def _torch_attr(module: str, name: str) -> Callable[[], Any]:
    def get() -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)

    return get


def _allowlist() -> dict[tuple[str, str], Callable[[], Any]]:
    allowed: dict[tuple[str, str], Callable[[], Any]] = {
        ("collections", "OrderedDict"): lambda: OrderedDict,
        ("torch.storage", "_load_from_bytes"): lambda: _safe_load_from_bytes,
        ("_codecs", "encode"): lambda: _safe_codecs_encode,
        ("copyreg", "_reconstructor"): lambda: _safe_reconstructor,
        ("torch", "Size"): lambda: torch.Size,
        ("torch", "device"): lambda: torch.device,
        ("torch", "Tensor"): lambda: torch.Tensor,
        ("torch._tensor", "Tensor"): lambda: torch.Tensor,
        ("torch.nn.parameter", "Parameter"): lambda: torch.nn.Parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _torch_attr("torch._tensor", "_rebuild_from_type_v2"),
        ("torch.serialization", "_get_layout"): _torch_attr("torch.serialization", "_get_layout"),
    }
    for name in ("set", "frozenset", "slice", "complex", "bytearray", "range", "dict", "list", "tuple"):
        allowed[("builtins", name)] = _torch_attr("builtins", name)
    for name in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
    ):
        allowed[("torch._utils", name)] = _torch_attr("torch._utils", name)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        for name in ("_reconstruct", "scalar"):
            allowed[(mod, name)] = _numpy_attr(mod, name)
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = _numpy_attr(mod, "_frombuffer")
    allowed[("numpy", "ndarray")] = _numpy_attr("numpy", "ndarray")
    allowed[("numpy", "dtype")] = _numpy_attr("numpy", "dtype")
    return allowed


_ALLOWED = _allowlist()
_MODULE_RENAMES = {"torch.tensor": "torch._tensor"}


def _restricted_build(self: RestrictedUnpickler) -> None:
    """BUILD (set an object's state) only on stubs, tensors, numpy arrays/dtypes and OrderedDicts.

    The stock BUILD would ``setattr`` on anything, e.g. on an allowlisted class or function."""
    state = self.stack.pop()
    inst = self.stack[-1]
    if isinstance(inst, PickledObject):
        inst.__setstate__(state)
    elif type(inst) in (torch.Tensor, torch.nn.Parameter) or isinstance(inst, (np.ndarray, np.dtype)):
        inst.__setstate__(state)
    elif type(inst) is OrderedDict and isinstance(state, dict) and all(type(k) is str for k in state):
        inst.__dict__.update(state)
    else:
        raise pickle.UnpicklingError(f"refusing to set the state of a {type(inst).__name__}")


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves only allowlisted globals and stubs the rest (see module docstring).

    Built on the pure-Python unpickler so that BUILD can be restricted too (``_restricted_build``).
    ``stubbed`` lists the qualified names that were replaced by stubs, in first-seen order.
    ``persistent_load`` may be set (as for torch archives); without it a persistent id is an error.
    """

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _restricted_build

    def __init__(self, file: Any, persistent_load: Callable[[Any], Any] | None = None):
        super().__init__(file)
        self.stubbed: list[str] = []
        self._stub_classes: dict[tuple[str, str], type[PickledObject]] = {}
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        module, name = str(module), str(name)
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 era names
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        module = _MODULE_RENAMES.get(module, module)
        getter = _ALLOWED.get((module, name))
        if getter is not None:
            return getter()
        if module == "torch":
            value = getattr(torch, name, None)
            if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
                return value
        if module in ("torch", "torch.storage", "torch.cuda") and name.endswith("Storage"):
            kind = _storage_kind(name)
            if kind is not None:
                return kind
        return self._stub(module, name)

    def _stub(self, module: str, name: str) -> type[PickledObject]:
        key = (module, name)
        cls = self._stub_classes.get(key)
        if cls is None:
            base = PersistentObject if name == PERSISTENT_RECONSTRUCTOR else PickledObject
            safe_name = "".join(c if c.isalnum() else "_" for c in name)[:80] or "stub"
            cls = type(safe_name, (base,), {"pickled_module": module, "pickled_name": name})
            self._stub_classes[key] = cls
            self.stubbed.append(f"{module}.{name}")
        return cls


# ------------------------------------------------------------------------------------------- helpers
def _fail(path: Path, what: str, err: BaseException | None = None) -> CheckpointError:
    detail = ""
    if err is not None:
        text = " ".join(str(err).split())
        detail = f": {type(err).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"
    return CheckpointError(f"{what}{detail}", path=path)


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError("file not found", path=path)
    if not path.is_file():
        raise CheckpointError("not a regular file", path=path)
    if path.stat().st_size == 0:
        raise CheckpointError("empty file", path=path)
    return path


def read_head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


# --------------------------------------------------------------------------------------- plain pickle
def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`. Raises CheckpointError on any failure."""
    path = check_file(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of a damaged/hostile file is a CheckpointError
        raise _fail(path, "cannot read pickle", err) from err


def module_state(obj: Any) -> Mapping[str, Any] | None:
    """The ``__dict__`` a stubbed nn.Module was pickled with (persistence meta state or BUILD state)."""
    if isinstance(obj, PersistentObject):
        return obj.module_state
    if isinstance(obj, PickledObject):
        return as_mapping(obj.state)
    return None


def is_module_record(obj: Any) -> bool:
    state = module_state(obj)
    return state is not None and ("_parameters" in state or "_modules" in state)


def module_state_dict(obj: Any, prefix: str = "", _depth: int = 0) -> dict[str, torch.Tensor]:
    """Flatten a stubbed module's parameters and persistent buffers into ``{'a.b.weight': tensor}``."""
    if _depth > 100:
        raise ValueError("module nesting deeper than 100 (a cycle?)")
    state = module_state(obj)
    out: dict[str, torch.Tensor] = {}
    if state is None:
        return out
    non_persistent = state.get("_non_persistent_buffers_set")
    if not isinstance(non_persistent, (set, frozenset, list, tuple)):
        non_persistent = ()
    for field in ("_parameters", "_buffers"):
        for name, value in (as_mapping(state.get(field)) or {}).items():
            if isinstance(value, torch.Tensor) and not (field == "_buffers" and name in non_persistent):
                out[f"{prefix}{name}"] = value
    for name, child in (as_mapping(state.get("_modules")) or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}.", _depth + 1))
    return out


def load_persistence_pickle(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of ``G_ema`` (else ``G``) from a StyleGAN2-ADA / MAT network pickle, never exec'ing it."""
    path = Path(path)
    data = load_pickle(path)
    mapping = as_mapping(data)
    if mapping is None:
        raise CheckpointError(f"not a network pickle (top level is {type(data).__name__}, not a dict)", path)
    for key in ("G_ema", "G"):
        if key in mapping and is_module_record(mapping[key]):
            try:
                state_dict = module_state_dict(mapping[key])
            except ValueError as err:
                raise _fail(path, f"cannot read network pickle entry {key!r}", err) from err
            if not state_dict:
                raise CheckpointError(f"network pickle entry {key!r} holds no tensors", path)
            return state_dict
    keys = ", ".join(map(str, list(mapping)[:8]))
    raise CheckpointError(f"not a network pickle: no 'G_ema' or 'G' module (keys: {keys})", path)


# ---------------------------------------------------------------------------------- torch zip archive
def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _typed_storage(raw: bytes, dtype: torch.dtype, swap: bool) -> torch.storage.TypedStorage:
    if raw:
        untyped = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8)
    else:
        untyped = torch.UntypedStorage(0)
    if swap and _element_size(dtype) > 1:
        untyped.byteswap(dtype)
    return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def read_torch_archive(path: str | Path) -> Any:
    """Load a torch.save zip archive with the restricted unpickler (data.pkl + data/<key> records)."""
    path = check_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if not pickles:
                raise CheckpointError("zip archive without data.pkl: not a PyTorch checkpoint", path)
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = "little"
            if f"{prefix}byteorder" in names:
                byteorder = zf.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
                if byteorder not in ("little", "big"):
                    raise CheckpointError(f"unknown byte order record {byteorder!r}", path)
            swap = byteorder != sys.byteorder
            loaded: dict[str, torch.storage.TypedStorage] = {}

            def persistent_load(saved_id: Any) -> Any:
                if not isinstance(saved_id, tuple) or not saved_id:
                    raise pickle.UnpicklingError(f"bad persistent id {type(saved_id).__name__}")
                typename = saved_id[0].decode("ascii") if isinstance(saved_id[0], bytes) else saved_id[0]
                if typename != "storage" or len(saved_id) != 5:
                    raise pickle.UnpicklingError(f"unsupported persistent id {typename!r}")
                kind, key, _location, numel = saved_id[1:]
                if not isinstance(kind, StorageKind):
                    raise pickle.UnpicklingError(f"unknown storage type {kind!r}")
                key = key.decode("ascii") if isinstance(key, bytes) else str(key)
                if key not in loaded:
                    nbytes = int(numel) * _element_size(kind.dtype)
                    raw = zf.read(f"{prefix}data/{key}")
                    if len(raw) < nbytes:
                        raise pickle.UnpicklingError(f"record data/{key} has {len(raw)} bytes, need {nbytes}")
                    loaded[key] = _typed_storage(raw[:nbytes], kind.dtype, swap)
                return loaded[key]

            with zf.open(pickles[0]) as f:
                return RestrictedUnpickler(io.BytesIO(f.read()), persistent_load=persistent_load).load()
    except CheckpointError:
        raise
    except zipfile.BadZipFile as err:
        raise _fail(path, "damaged or truncated zip archive", err) from err
    except Exception as err:  # noqa: BLE001
        raise _fail(path, "cannot read PyTorch archive", err) from err


# ------------------------------------------------------------------------------- torch legacy format
def read_torch_legacy(path: str | Path) -> Any:
    """Load a legacy (non-zip, torch < 1.6) torch.save file with the restricted unpickler."""
    path = check_file(path)
    try:
        with open(path, "rb") as f:
            magic = RestrictedUnpickler(f).load()
            if magic != 0x1950A86A20F9469CFC6C:
                raise CheckpointError("not a legacy PyTorch file (bad magic number)", path)
            RestrictedUnpickler(f).load()  # protocol version
            sys_info = RestrictedUnpickler(f).load()
            little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
            swap = little != (sys.byteorder == "little")
            roots: dict[str, tuple[torch.dtype, int]] = {}
            storages: dict[str, torch.storage.TypedStorage] = {}

            def persistent_load(saved_id: Any) -> Any:
                if not isinstance(saved_id, tuple) or not saved_id:
                    raise pickle.UnpicklingError("bad persistent id")
                typename = saved_id[0].decode("ascii") if isinstance(saved_id[0], bytes) else saved_id[0]
                if typename == "module":
                    return saved_id[1]  # a class reference: resolved (stubbed) by find_class already
                if typename != "storage" or len(saved_id) != 6:
                    raise pickle.UnpicklingError(f"unsupported persistent id {typename!r}")
                kind, root_key, _location, numel, view = saved_id[1:]
                if not isinstance(kind, StorageKind):
                    raise pickle.UnpicklingError(f"unknown storage type {kind!r}")
                root_key = str(root_key)
                if root_key not in storages:
                    nbytes = int(numel) * _element_size(kind.dtype)
                    storages[root_key] = torch.storage.TypedStorage(
                        wrap_storage=torch.UntypedStorage(nbytes), dtype=kind.dtype, _internal=True
                    )
                    roots[root_key] = (kind.dtype, int(numel))
                if view is None:
                    return storages[root_key]
                view_key, offset, size = str(view[0]), int(view[1]), int(view[2])
                if view_key not in storages:
                    el = _element_size(kind.dtype)
                    base = storages[root_key]._untyped_storage
                    storages[view_key] = torch.storage.TypedStorage(
                        wrap_storage=base[offset * el : (offset + size) * el],
                        dtype=kind.dtype,
                        _internal=True,
                    )
                return storages[view_key]

            result = RestrictedUnpickler(f, persistent_load=persistent_load).load()
            keys = RestrictedUnpickler(f).load()
            if not isinstance(keys, list):
                raise pickle.UnpicklingError("storage key list missing")
            for key in keys:
                key = str(key)
                if key not in roots:
                    raise pickle.UnpicklingError(f"storage {key!r} listed but never referenced")
                dtype, numel = roots[key]
                head = f.read(8)
                if len(head) != 8:
                    raise EOFError("file ends before storage data")
                (count,) = struct.unpack("<q" if little else ">q", head)
                if count != numel:
                    raise pickle.UnpicklingError(f"storage {key!r} holds {count} elements, expected {numel}")
                nbytes = numel * _element_size(dtype)
                raw = f.read(nbytes)
                if len(raw) != nbytes:
                    raise EOFError("file ends inside storage data")
                if nbytes:
                    src = _typed_storage(raw, dtype, swap)._untyped_storage
                    storages[key]._untyped_storage.copy_(src)
            return result
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001
        raise _fail(path, "cannot read legacy PyTorch file", err) from err


# ------------------------------------------------------------------------------------------ dispatch
def load_torch_file(path: str | Path) -> Any:
    """torch.load(weights_only=True); if that refuses a global, read the file with the restricted
    unpickler instead (foreign classes become inert stubs, tensors load). Never unrestricted."""
    path = check_file(path)
    head = read_head(path)
    if not (head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_TORCH_MAGIC)):
        raise CheckpointError(
            "not a PyTorch file (neither a torch zip archive nor a legacy torch.save)", path
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # a global outside torch's weights_only allowlist: fall through to our reader
    except Exception as err:  # noqa: BLE001
        if head.startswith(ZIP_MAGIC):
            try:
                zipfile.ZipFile(path).close()
            except zipfile.BadZipFile as zerr:
                raise _fail(path, "damaged or truncated zip archive", zerr) from err
        raise _fail(path, "cannot read PyTorch file", err) from err
    if head.startswith(ZIP_MAGIC):
        return read_torch_archive(path)
    return read_torch_legacy(path)
