"""fp32 ONNX export of one stage (legacy TorchScript exporter, opset 17, spec dynamic axes) and its checks."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from trt_inpaint import atomic
from trt_inpaint.errors import EngineError
from trt_inpaint.export import spec as S
from trt_inpaint.export.fold import fold_constants

if TYPE_CHECKING:
    import onnx
    import torch

OPSET = 17
_TWO_GB = 2**31 - 1
# ops that TensorRT(-RTX) parsers or ONNX Runtime's CUDA EP cannot take (LaMa must use the matmul DFT)
FORBIDDEN_OPS = frozenset({"DFT", "STFT"})


def dynamic_axes(stage_spec: S.StageSpec) -> dict[str, dict[int, str]]:
    """Symbolic axes of the inputs and outputs, as in the spec (H and W fixed for fixed-size stages)."""
    axes: dict[str, dict[int, str]] = {}
    fixed = {S.H, S.W} if stage_spec.fixed_size is not None else set()  # MAT: batch only, 512x512
    for t in (*stage_spec.inputs, *stage_spec.outputs):
        sym = {i: d for i, d in enumerate(t.shape) if isinstance(d, str) and d not in fixed}
        if sym:
            axes[t.name] = sym
    return axes


def example_inputs(stage_spec: S.StageSpec, size: int | None = None, seed: int = 0):
    """Deterministic torch inputs for tracing (images in [0,1], binary masks, noise at the spec's shapes:
    the stage boundary is the spec's even for reduced MATs, whose stage wrapper crops the noise)."""
    import numpy as np
    import torch

    from trt_inpaint.export.calibration import noise_feeds

    batch = 1
    side = stage_spec.fixed_size or size or 64
    rng = np.random.default_rng(seed)
    noise = noise_feeds(stage_spec.stage, seed)
    out = []
    for t in stage_spec.inputs:
        shape = t.concrete(batch, side, side)
        if t.role is S.Role.NOISE:
            arr = noise[t.name]
        elif t.role is S.Role.MASK:
            arr = (rng.random(shape) < 0.3).astype(np.float32)
        else:
            arr = rng.random(shape, dtype=np.float32)
        out.append(torch.from_numpy(np.ascontiguousarray(arr)))
    return tuple(out)


def export_onnx(module: torch.nn.Module, stage: S.Stage, path: Path, trace_size: int = 64) -> Path:
    """Trace ``module`` (forward takes the spec inputs positionally) to an fp32 ONNX file at ``path``.

    The trace goes to a private scratch folder beside ``path`` (removed after) and the folded model is
    written atomically, so a crash leaves no half-written model.
    """
    import onnx
    import torch

    stage_spec = S.spec(stage)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    with (
        tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as scratch,
        torch.no_grad(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        traced = Path(scratch) / "traced.onnx"
        torch.onnx.export(
            module,
            example_inputs(stage_spec, trace_size),
            str(traced),
            input_names=list(stage_spec.input_names),
            output_names=list(stage_spec.output_names),
            dynamic_axes=dynamic_axes(stage_spec),
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        model = onnx.load(str(traced), load_external_data=True)
    fold_constants(model)
    name_nodes(model)
    save_model(model, path)
    check_onnx(path, stage)
    return path


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every node a unique name (fp32 islands are recorded and blocked by node name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save atomically, with weights as external data when the model exceeds protobuf's 2 GB limit (the
    model refers to its data file by the final name, so that file is written in place, before the model)."""
    import onnx

    path = Path(path)
    big = model.ByteSize() > _TWO_GB
    with atomic.atomic_path(path) as tmp:
        if big:
            onnx.save_model(
                model,
                str(tmp),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=path.name + ".data",
            )
        else:
            onnx.save_model(model, str(tmp))


def check_onnx(path: Path, stage: S.Stage | str) -> onnx.ModelProto:
    """onnx.checker + shape inference, opset >= 17, I/O names from the spec, no DFT. Raises EngineError."""
    import onnx

    path = Path(path)
    stage_spec = S.spec(stage)
    try:
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # onnx raises several unrelated types
        raise EngineError(f"invalid ONNX for stage {stage_spec.name}: {e}", path) from e
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < OPSET:
        raise EngineError(f"opset {opset} < {OPSET}", path)
    bad = sorted({n.op_type for n in model.graph.node} & FORBIDDEN_OPS)
    if bad:
        raise EngineError(f"graph holds {', '.join(bad)} nodes, which TensorRT cannot parse", path)
    inputs = tuple(
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    )
    outputs = tuple(o.name for o in model.graph.output)
    if inputs != stage_spec.input_names or outputs != stage_spec.output_names:
        raise EngineError(
            f"I/O names {inputs} -> {outputs} differ from the spec {stage_spec.input_names} -> "
            f"{stage_spec.output_names}",
            path,
        )
    return model
