"""Fold weight-only subgraphs into initializers.

The TorchScript exporter folds some of the arithmetic done on parameters but not all of it: MAT's
modulated convolutions come out as a folded ``w * gain`` or ``w ** 2`` initializer of full size followed by
a live Slice (the flip of a transposed-conv weight) or ReduceSum (the demodulation sum). The ONNX then
carries each such weight twice. Evaluating those nodes once, here, leaves one initializer per weight:
smaller files, and less for ONNX Runtime and TensorRT to fold at load or build time.

Only nodes whose inputs are all constants are folded, and only when the result is no larger than what it
replaces (an Expand or ConstantOfShape of a constant would grow the file). A folded node whose input is
still read elsewhere leaves both tensors in the file; ONNX Runtime and TensorRT would hold the same two
after their own folding at load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

# shape-producing ops are left to the runtimes (their outputs are tiny, and folding them gains nothing)
_SKIP = frozenset(
    {
        "Constant",
        "If",
        "Loop",
        "Scan",
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


def constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """Initializers and Constant-node values by tensor name."""
    consts = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = a.t
    return consts


def _evaluate(node: onnx.NodeProto, inputs: list[np.ndarray], opset: int) -> list[np.ndarray]:
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    ins = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape)
        for name, arr in zip(node.input, inputs, strict=True)
    ]
    outs = [helper.make_tensor_value_info(o, 0, None) for o in node.output]
    graph = helper.make_graph([node], "fold", ins, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return list(ReferenceEvaluator(model).run(None, dict(zip(node.input, inputs, strict=True))))


def fold_constants(model: onnx.ModelProto) -> int:
    """Replace, in place, every node computed from initializers only (and no larger than its inputs) by an
    initializer; drop initializers nothing reads any more. Returns the number of nodes folded."""
    from onnx import numpy_helper

    from trt_inpaint.export.segmented import node_inputs

    g = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=17)
    consts = constants(model)
    graph_outputs = {o.name for o in g.output}
    kept: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    folded = 0
    for node in g.node:
        inputs = [i for i in node.input if i]
        foldable = (
            node.domain in ("", "ai.onnx")
            and node.op_type not in _SKIP
            and inputs
            and len(inputs) == len(node.input)
            and all(i in consts for i in inputs)
            and not any(o in graph_outputs for o in node.output)
            and not any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute)
        )
        if foldable:
            arrays = [numpy_helper.to_array(consts[i]) for i in inputs]
            in_bytes = sum(a.nbytes for a in arrays)
            if in_bytes > 1024:  # tiny shape arithmetic stays as it is
                results = _evaluate(node, arrays, opset)
                if sum(np.asarray(r).nbytes for r in results) <= in_bytes:
                    for name, arr in zip(node.output, results, strict=True):
                        t = numpy_helper.from_array(np.asarray(arr), name)
                        consts[name] = t
                        new_inits.append(t)
                    folded += 1
                    continue
        kept.append(node)
    if not folded:
        return 0
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(new_inits)
    # Constant nodes that fed only folded nodes, then initializers nothing reads any more
    used = {i for n in g.node for i in node_inputs(n)} | graph_outputs
    kept = [n for n in g.node if n.op_type != "Constant" or any(o in used for o in n.output)]
    del g.node[:]
    g.node.extend(kept)
    used = {i for n in g.node for i in node_inputs(n)} | graph_outputs
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return folded
