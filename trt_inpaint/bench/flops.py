"""Dense FLOPs of an ONNX graph at a given input size, counted node by node after shape inference.

Counted (2 FLOPs per multiply-add): Conv, ConvTranspose, MatMul, Gemm, Einsum (attention matmuls appear as
MatMul or Einsum). Element-wise ops, normalisations and activations are not counted: at these sizes they
are a few percent of the total and bound by memory, not arithmetic. The graph's symbolic input
dimensions are made concrete, then ONNX Runtime's basic graph optimisation (constant folding, which
folds shape arithmetic such as reflect-pad amounts and a DFT built from the input's own size) before
onnx's data-propagating inference. Weights are not read: large initializers become inputs of their shape.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx
from onnx import ModelProto, shape_inference

from trt_inpaint import atomic
from trt_inpaint.errors import EngineError

COUNTED = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Einsum")


@dataclass
class FlopCount:
    total: float = 0.0
    by_op: dict[str, float] = field(default_factory=dict)
    counted_nodes: int = 0
    unknown_nodes: list[str] = field(default_factory=list)  # counted op types whose shapes stayed unknown

    @property
    def complete(self) -> bool:
        return not self.unknown_nodes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unknown_nodes"] = self.unknown_nodes[:20]
        d["unknown_count"] = len(self.unknown_nodes)
        return d


def _dims(vi) -> list[int | None]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]


def concretize(model: ModelProto, shapes: dict[str, tuple[int, ...]]) -> ModelProto:
    """A copy of ``model`` whose graph inputs named in ``shapes`` have those fixed dimensions."""
    m = ModelProto()
    m.CopyFrom(model)
    del m.graph.value_info[:]
    for inp in m.graph.input:
        if inp.name not in shapes:
            continue
        dims = inp.type.tensor_type.shape.dim
        want = shapes[inp.name]
        if len(dims) != len(want):
            raise EngineError(f"input {inp.name} has rank {len(dims)}, size given has rank {len(want)}")
        for d, v in zip(dims, want, strict=True):
            d.Clear()
            d.dim_value = int(v)
    return m


def strip_weights(model: ModelProto, min_elements: int = 1024) -> ModelProto:
    """A copy where every initializer of ``min_elements`` or more becomes a graph input of the same shape.

    Shapes are all FLOP counting needs; without the weights the graph folds and infers in milliseconds.
    """
    m = ModelProto()
    m.CopyFrom(model)
    keep, moved = [], []
    for init in m.graph.initializer:
        if math.prod(init.dims) >= min_elements:
            moved.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            keep.append(init)
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    names = {i.name for i in m.graph.input}
    m.graph.input.extend(v for v in moved if v.name not in names)
    return m


def _ort_fold(model: ModelProto) -> ModelProto:
    """ONNX Runtime's basic graph optimisations (constant folding of shape arithmetic, such as reflect-pad
    amounts and matrices built from the input size) at the concrete input sizes."""
    import tempfile

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="inpaint-bench-flops-") as tmp:
        so.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath)


def infer(model: ModelProto) -> ModelProto:
    """Shapes everywhere: fold with ONNX Runtime, then onnx's data-propagating inference; if folding fails,
    ONNX Runtime's symbolic inference, then onnx's alone."""
    try:
        return shape_inference.infer_shapes(_ort_fold(model), data_prop=True)
    except Exception:  # a graph ORT cannot take: the pure-onnx passes still give most shapes
        pass
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        out = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=False)
        if out is not None:
            return out
    except Exception:
        pass
    return shape_inference.infer_shapes(model, data_prop=True)


def _shape_table(model: ModelProto) -> dict[str, list[int | None]]:
    g = model.graph
    table = {vi.name: _dims(vi) for vi in (*g.input, *g.value_info, *g.output)}
    for init in g.initializer:
        table[init.name] = list(init.dims)
    for node in g.node:  # Constant nodes carry their shape in the attribute
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    table[node.output[0]] = list(a.t.dims)
    return table


def _known(*shapes: list[int | None] | None) -> bool:
    return all(s and all(d is not None for d in s) for s in shapes)


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def node_flops(node, shapes: dict[str, list[int | None]]) -> float | None:
    """FLOPs of one counted node, or None where a needed shape is unknown."""
    get = shapes.get
    op = node.op_type
    if op == "Conv":
        w, y = get(node.input[1]), get(node.output[0])
        if not _known(w, y):
            return None
        return 2.0 * math.prod(y) * math.prod(w[1:])  # N*Cout*Ho*Wo * (Cin/g)*kh*kw
    if op == "ConvTranspose":
        x, w = get(node.input[0]), get(node.input[1])
        if not _known(x, w):
            return None
        return 2.0 * math.prod(x) * math.prod(w[1:])  # N*Cin*H*W * (Cout/g)*kh*kw
    if op == "MatMul":
        a, y = get(node.input[0]), get(node.output[0])
        if not _known(a, y):
            return None
        return 2.0 * math.prod(y) * a[-1]
    if op == "Gemm":
        a, y = get(node.input[0]), get(node.output[0])
        if not _known(a, y):
            return None
        k = a[0] if _attr(node, "transA", 0) else a[-1]
        return 2.0 * math.prod(y) * k
    if op == "Einsum":
        eq = _attr(node, "equation", b"")
        eq = eq.decode() if isinstance(eq, bytes) else eq
        lhs = eq.replace(" ", "").split("->")[0].split(",")
        ins = [get(i) for i in node.input]
        if not _known(*ins) or "..." in eq or len(lhs) != len(ins):
            return None
        size: dict[str, int] = {}
        for letters, s in zip(lhs, ins, strict=True):
            size.update(zip(letters, s, strict=False))
        return 2.0 * math.prod(size.values())
    return 0.0


def count_model(model: ModelProto, shapes: dict[str, tuple[int, ...]], stripped: bool = False) -> FlopCount:
    """FLOPs of ``model`` with its inputs fixed to ``shapes`` (``stripped``: weights already removed)."""
    inferred = infer(concretize(model if stripped else strip_weights(model), shapes))
    table = _shape_table(inferred)
    fc = FlopCount()
    for node in _all_nodes(inferred.graph):
        if node.op_type not in COUNTED:
            continue
        f = node_flops(node, table)
        if f is None:
            fc.unknown_nodes.append(node.name or f"{node.op_type}->{node.output[0]}")
            continue
        fc.counted_nodes += 1
        fc.total += f
        fc.by_op[node.op_type] = fc.by_op.get(node.op_type, 0.0) + f
    return fc


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for a in node.attribute:  # nodes inside If / Loop bodies
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(a.g)


def load_graph(path: str | Path) -> ModelProto:
    """The graph with initializer dims (external weight data is not read)."""
    path = Path(path)
    if not path.is_file():
        raise EngineError("ONNX file not found", path)
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise EngineError(f"not a readable ONNX model: {e}", path) from e


def count_file(path: str | Path, shapes: dict[str, tuple[int, ...]]) -> FlopCount:
    return count_model(strip_weights(load_graph(path)), shapes, stripped=True)


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trt-inpaint" / "bench-flops.json"


def _cache_key(path: Path, shapes: dict[str, tuple[int, ...]]) -> str:
    st = path.stat()
    dims = ";".join(f"{k}={'x'.join(map(str, v))}" for k, v in sorted(shapes.items()))
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{dims}"


def _read_cache(file: Path) -> dict:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def count_file_sizes(
    path: str | Path, shape_sets: list[dict[str, tuple[int, ...]]], cache: Path | None = None
) -> list[FlopCount]:
    """``count_file`` at several input sizes, reading the file once; complete counts are cached by file
    (path, size, modification time) and shapes in ``cache`` (default ``cache_path()``), since folding a
    large graph takes seconds."""
    path = Path(path)
    if not path.is_file():
        raise EngineError("ONNX file not found", path)
    cache = cache or cache_path()
    known = _read_cache(cache)
    out: list[FlopCount | None] = []
    for shapes in shape_sets:
        hit = known.get(_cache_key(path, shapes))
        out.append(FlopCount(hit["total"], dict(hit["by_op"]), hit["counted_nodes"]) if hit else None)
    if any(fc is None for fc in out):
        graph = strip_weights(load_graph(path))
        for i, shapes in enumerate(shape_sets):
            if out[i] is None:
                fc = out[i] = count_model(graph, shapes, stripped=True)
                if fc.complete:
                    known[_cache_key(path, shapes)] = {"total": fc.total, "by_op": fc.by_op,
                                                       "counted_nodes": fc.counted_nodes}  # fmt: skip
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(cache, json.dumps(known))
        except OSError:
            pass  # a read-only home only costs the next run the same seconds
    return [fc for fc in out if fc is not None]
