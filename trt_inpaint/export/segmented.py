"""Running an ONNX graph on ONNX Runtime (CPU) in parts, so that every tensor it computes can be seen.

``SegmentedRun`` cuts the topologically ordered nodes into segments whose float outputs stay under a byte
limit, runs each segment as its own session, and hands every tensor a segment makes to a visitor; tensors
that cross a cut are carried in memory. The fp16 conversion measures tensors this way; ``run_onnx`` and
``infer`` are the plain helpers it shares with the export checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

Feeds = dict[str, np.ndarray]


def node_inputs(node) -> list[str]:
    """A node's inputs, including the outer-scope names its subgraphs (If/Loop/Scan bodies) read."""
    names = [i for i in node.input if i]
    for a in node.attribute:
        for g in (*([a.g] if a.HasField("g") else []), *a.graphs):
            inner = (
                {o for n in g.node for o in n.output}
                | {i.name for i in g.input}
                | {t.name for t in g.initializer}
            )
            for n in g.node:
                names += [i for i in node_inputs(n) if i not in inner]
    return list(dict.fromkeys(names))


def static_sizes(model: onnx.ModelProto) -> dict[str, int]:
    """Bytes (as fp32) of every value_info tensor whose shape inference fixed all dims."""
    sizes: dict[str, int] = {}
    for v in model.graph.value_info:
        dims = v.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            sizes[v.name] = int(np.prod([d.dim_value for d in dims])) * 4
    return sizes


def infer(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def fixed_inputs(model: onnx.ModelProto, feeds: Feeds) -> onnx.ModelProto:
    """A copy with input dims set to the feeds' shapes (for size estimates)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        if inp.name in feeds:
            for d, v in zip(inp.type.tensor_type.shape.dim, feeds[inp.name].shape, strict=False):
                d.Clear()
                d.dim_value = int(v)
    del m.graph.value_info[:]
    return infer(m)


def measuring_session(model_bytes: bytes):
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # segments leave Constant outputs unread: ORT warns for each
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # keep every exposed tensor as the graph computes it (no fusions that would hide or change them)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    # many sessions live at once (one per graph part): no arena, so each run's memory is returned
    so.enable_cpu_mem_arena = False
    so.enable_mem_pattern = False
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def run_onnx(model: str | Path | bytes, feeds: Sequence[Feeds]) -> list[np.ndarray]:
    """First output of ``model`` for each feed dict (ONNX Runtime CPU, default optimizations)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = str(model) if isinstance(model, Path) else model
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    return [sess.run(None, f)[0] for f in feeds]


def segments(model: onnx.ModelProto, feeds: Feeds, limit: int) -> list[list]:
    """The (topologically ordered) nodes cut into runs whose float outputs stay under ``limit`` bytes."""
    sizes = static_sizes(fixed_inputs(model, feeds))
    default = 4 << 20  # shape inference left the size open (mostly small shape / index tensors)
    segments: list[list] = [[]]
    used = 0
    for n in model.graph.node:
        b = sum(sizes.get(o, default) for o in n.output if o)
        if segments[-1] and used + b > limit:
            segments.append([])
            used = 0
        segments[-1].append(n)
        used += b
    return segments


class SegmentedRun:
    """Runs a graph segment by segment (one ONNX Runtime session each), exposing every tensor a segment
    makes; tensors crossing a cut are carried in memory. One pass over the model per feed."""

    def __init__(self, model: onnx.ModelProto, segments: list[list]):
        g = model.graph
        self.model = model
        self.segments = segments
        self.inits = {i.name: i for i in g.initializer}
        self.types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
        self.graph_outputs = [o.name for o in g.output]
        last_use: dict[str, int] = {}
        for k, seg in enumerate(segments):
            for n in seg:
                for i in node_inputs(n):
                    last_use[i] = k
        for o in self.graph_outputs:
            last_use[o] = len(segments)
        self.last_use = last_use
        self.sessions: list = [None] * len(segments)
        self.io: list[tuple[list[str], list[str]]] = []
        for seg in segments:
            produced = [o for n in seg for o in n.output if o]
            pset = set(produced)
            inputs = list(
                dict.fromkeys(i for n in seg for i in node_inputs(n) if i not in pset and i not in self.inits)
            )
            self.io.append((inputs, produced))

    def _session(self, k: int, live: dict[str, np.ndarray]):
        import onnx
        from onnx import helper

        if self.sessions[k] is None:
            seg = self.segments[k]
            inputs, produced = self.io[k]
            used = {i for n in seg for i in node_inputs(n)}
            vi_in = [
                helper.make_tensor_value_info(
                    i, helper.np_dtype_to_tensor_dtype(live[i].dtype), live[i].shape
                )
                for i in inputs
            ]
            vi_out = [
                helper.make_tensor_value_info(o, self.types.get(o, onnx.TensorProto.FLOAT), None)
                for o in produced
            ]
            graph = helper.make_graph(
                seg, f"segment{k}", vi_in, vi_out, [self.inits[i] for i in used if i in self.inits]
            )
            sub = helper.make_model(
                graph, opset_imports=self.model.opset_import, ir_version=self.model.ir_version
            )
            self.sessions[k] = measuring_session(sub.SerializeToString())
        return self.sessions[k]

    def run(self, feeds: Feeds, visit: Callable[[str, np.ndarray], None]) -> dict[str, np.ndarray]:
        live = dict(feeds)
        for k in range(len(self.segments)):
            inputs, produced = self.io[k]
            sess = self._session(k, live)
            results = sess.run(produced, {i: live[i] for i in inputs})
            for name, arr in zip(produced, results, strict=True):
                visit(name, arr)
                if self.last_use.get(name, -1) > k:
                    live[name] = arr
            del results
            for name in [n for n in live if self.last_use.get(n, -1) <= k]:
                del live[name]
        return {o: live[o] for o in self.graph_outputs}
