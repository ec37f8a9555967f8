"""Checkpoint loading and saving: read a state dict from any supported file, load it strictly, build models.

Supported: ``.safetensors``; torch.save files (zip or legacy: ``.ckpt``/``.pth``/``.pt``/``.bin``, including
Lightning checkpoints holding foreign classes); StyleGAN2-ADA / MAT network pickles (``.pkl``). Nothing
from a file is ever executed (see ``safe_pickle``). Every failure is a one-line CheckpointError.
"""

from __future__ import annotations

import importlib
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from trt_inpaint import atomic
from trt_inpaint.errors import CheckpointError
from trt_inpaint.models import safe_pickle

# Container keys unwrapped in this order (Lightning, BasicSR, generic, StyleGAN / MAT).
CONTAINER_KEYS = ("state_dict", "params_ema", "params", "model_state_dict", "model", "G_ema", "G", "net")
SHOWN_KEYS = 5


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 0 < header_len < 100_000_000 and head[8:9] == b"{"


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as err:
        text = " ".join(str(err).split())[:200]
        raise CheckpointError(f"damaged safetensors file: {type(err).__name__}: {text}", path) from err


def _is_container(obj: Any) -> bool:
    return (
        safe_pickle.is_module_record(obj)
        or isinstance(obj, torch.nn.Module)
        or bool(safe_pickle.as_mapping(obj))
    )


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Descend through known containers (and stubbed modules) to a flat ``{name: tensor}`` dict."""
    for _ in range(6):
        if isinstance(obj, torch.nn.Module):  # cannot come from our loaders; accepted for API symmetry
            obj = obj.state_dict()
        if safe_pickle.is_module_record(obj):
            try:
                obj = safe_pickle.module_state_dict(obj)
            except ValueError as err:
                raise CheckpointError(f"cannot read pickled module: {err}", path) from err
        if safe_pickle.is_tensor_dict(obj):
            break
        mapping = safe_pickle.as_mapping(obj)
        inner = next((mapping[k] for k in CONTAINER_KEYS if mapping and _is_container(mapping.get(k))), None)
        if inner is None:
            break
        obj = inner
    mapping = safe_pickle.as_mapping(obj)
    if mapping is None:
        raise CheckpointError(f"no state dict found (file holds a {type(obj).__name__})", path)
    tensors = {str(k): v.detach() for k, v in mapping.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        keys = ", ".join(map(str, list(mapping)[:8])) or "none"
        raise CheckpointError(f"no tensors found in the checkpoint (top-level keys: {keys})", path)
    if all(k.startswith("module.") for k in tensors):  # DataParallel / DDP wrapper
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a flat state dict from ``path``, choosing the reader by content (extension as a hint)."""
    path = safe_pickle.check_file(path)
    head = safe_pickle.read_head(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors" or _is_safetensors(head):
        return _read_safetensors(path)
    if head.startswith(safe_pickle.ZIP_MAGIC) or head.startswith(safe_pickle.LEGACY_TORCH_MAGIC):
        return _unwrap(safe_pickle.load_torch_file(path), path)
    if head.startswith(b"\x80") or suffix == ".pkl":
        return _unwrap(safe_pickle.load_pickle(path), path)
    raise CheckpointError(
        "not a checkpoint (expected .safetensors, a torch.save file or a network pickle)", path
    )


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ")"


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return f"({shown}{', ...' if len(keys) > SHOWN_KEYS else ''})"


def check_state_dict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Problems a strict load would hit, as short phrases (empty list when the state dict fits)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        k for k in expected if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys {_names(unexpected)}")
    if mismatched:
        first = mismatched[0]
        text = (
            f"shape mismatch for {first}: file {_shape(state_dict[first])} vs model {_shape(expected[first])}"
        )
        if len(mismatched) > 1:
            text += f" and {len(mismatched) - 1} more {_names(mismatched[1:])}"
        problems.append(text)
    return problems


def load_checked(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | Path
) -> torch.nn.Module:
    """Strictly load ``state_dict`` into ``model``; any mismatch is one CheckpointError naming keys."""
    problems = check_state_dict(model, state_dict)
    if problems:
        raise CheckpointError("does not fit the model: " + "; ".join(problems), path)
    try:
        model.load_state_dict(dict(state_dict), strict=True)
    except RuntimeError as err:  # e.g. dtype that cannot be copied
        text = " ".join(str(err).split())[:200]
        raise CheckpointError(f"does not fit the model: {text}", path) from err
    return model


def _load_model(
    module_name: str, factory: str, path: str | Path, model_kw: dict[str, Any]
) -> torch.nn.Module:
    module = importlib.import_module(f"trt_inpaint.models.{module_name}")
    model = getattr(module, factory)(**model_kw)
    state_dict = read_state_dict(path)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        try:
            state_dict = filter_fn(state_dict, model)
        except CheckpointError as err:  # the model file's filter does not know the path: add it
            if err.path is not None:
                raise
            raise CheckpointError(str(err), path) from err
    load_checked(model, state_dict, path)
    return model.eval()


def load_lama(path: str | Path, **model_kw: Any) -> torch.nn.Module:
    """Big-LaMa generator (``lama.lama_big(**model_kw)``) from a Lightning .ckpt, .pth or .safetensors."""
    return _load_model("lama", "lama_big", path, model_kw)


def load_mat(path: str | Path, **model_kw: Any) -> torch.nn.Module:
    """MAT generator (``mat.mat_places(**model_kw)``) from the official .pkl, a .pth or .safetensors."""
    return _load_model("mat", "mat_places", path, model_kw)


def saved_constructor_kw(path: str | Path) -> dict[str, Any]:
    """Constructor arguments that training records in a .safetensors file's metadata (``widths``), so
    weights of any size load without the caller knowing it; {} for other files."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return {"widths": tuple(int(w) for w in json.loads(meta["widths"]))} if "widths" in meta else {}
    except Exception as e:  # damaged header or metadata
        raise CheckpointError(f"damaged safetensors file or metadata ({type(e).__name__})", path) from e


def load_denoiser(path: str | Path, **kw: Any) -> torch.nn.Module:
    """Trained ``denoiser.Denoiser(**kw)``; widths recorded in the file's metadata apply unless given."""
    return _load_model("denoiser", "Denoiser", path, {**saved_constructor_kw(path), **kw})


def load_combiner(path: str | Path, **kw: Any) -> torch.nn.Module:
    """Trained ``combiner.Combiner(**kw)``; widths recorded in the file's metadata apply unless given."""
    return _load_model("combiner", "Combiner", path, {**saved_constructor_kw(path), **kw})


def save_safetensors(
    model_or_state_dict: torch.nn.Module | Mapping[str, torch.Tensor],
    path: str | Path,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a state dict as .safetensors atomically (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    if isinstance(model_or_state_dict, torch.nn.Module):
        state_dict: Mapping[str, torch.Tensor] = model_or_state_dict.state_dict()
    else:
        state_dict = model_or_state_dict
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"cannot save {key!r}: not a tensor ({type(value).__name__})", path)
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:  # safetensors refuses shared storage: give each key its own
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[str(key)] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=dict(metadata) if metadata else None)
    return path
