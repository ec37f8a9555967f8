"""Running a graph in parts (the fp16 measurement): every tensor seen, outer-scope inputs of subgraphs
carried across cuts."""

from __future__ import annotations

import numpy as np
import onnx

from trt_inpaint.export import segmented


def _if_graph() -> onnx.ModelProto:
    """x -> Relu -> a -> (If: squeeze a / identity a, both reading ``a`` from the outer scope) -> Add."""
    from onnx import TensorProto, helper

    def branch(name: str, op: str) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)
        return helper.make_graph([helper.make_node(op, ["a"], [f"{name}_out"])], name, [], [out])

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Sigmoid", ["x"], ["b"]),
        helper.make_node("ReduceSum", ["b"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node(
            "If", ["cond"], ["c"], then_branch=branch("then", "Neg"), else_branch=branch("else", "Identity")
        ),
        helper.make_node("Add", ["c", "b"], ["y"]),
    ]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(nodes, "g", [x], [y], [zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_segmented_run_carries_outer_scope_tensors_of_if_bodies():
    """A cut between a tensor's producer and an If whose branch reads it: the tensor is carried over."""
    model = segmented.infer(_if_graph())
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)}
    segments = segmented.segments(model, feeds, limit=1)  # every node its own part
    assert len(segments) == len(model.graph.node)
    seen: list[str] = []
    out = segmented.SegmentedRun(model, segments).run(feeds, lambda name, arr: seen.append(name))
    x = feeds["x"].astype(np.float64)
    np.testing.assert_allclose(out["y"], -np.maximum(x, 0) + 1 / (1 + np.exp(-x)), rtol=1e-6, atol=1e-6)
    assert seen == ["a", "b", "s", "cond", "c", "y"]
