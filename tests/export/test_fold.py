"""Folding weight-only subgraphs: one initializer per weight, same outputs, nothing that grows folded."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from trt_inpaint.export.fold import fold_constants


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array([-1, -1], np.int64), "starts"),
        numpy_helper.from_array(np.full(2, np.iinfo(np.int64).min, np.int64), "ends"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1, -1], np.int64), "steps"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "sum_axes"),
        numpy_helper.from_array(np.ones((1, 8, 1, 1), np.float32), "one"),
        numpy_helper.from_array(np.array([1, 8, 16, 16], np.int64), "big_shape"),
    ]
    nodes = [
        # the flip of a transposed-conv weight and the demodulation sum: both computed from `w` alone
        helper.make_node("Slice", ["w", "starts", "ends", "axes", "steps"], ["w_flip"]),
        helper.make_node("Mul", ["w", "w"], ["w_sq"]),
        helper.make_node("ReduceSum", ["w_sq", "sum_axes"], ["w2"], keepdims=0),  # (8, 4)
        helper.make_node("Conv", ["x", "w_flip"], ["y0"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceSum", ["w2"], ["s"], keepdims=1),  # tiny: left alone
        helper.make_node("Div", ["y0", "s"], ["y1"]),
        # a constant broadcast to a larger tensor: folding it would grow the file
        helper.make_node("Expand", ["one", "big_shape"], ["ones"]),
        helper.make_node("Add", ["y1", "ones"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])
    return helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)]
    )


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no folding by ORT itself
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_weight_only_nodes_fold_and_outputs_stay():
    model = _model()
    x = np.random.default_rng(1).standard_normal((1, 4, 16, 16)).astype(np.float32)
    before = _run(model, x)
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    assert fold_constants(folded) == 3  # Slice, Mul, the big ReduceSum
    onnx.checker.check_model(folded)
    ops = [n.op_type for n in folded.graph.node]
    assert ops == ["Conv", "ReduceSum", "Div", "Expand", "Add"]
    names = {t.name for t in folded.graph.initializer}
    assert "w" not in names and "w_flip" in names and "w2" in names  # one copy of the weight, flipped
    assert {"starts", "steps", "sum_axes"}.isdisjoint(names)  # inputs only the folded nodes read
    w = numpy_helper.to_array(next(t for t in folded.graph.initializer if t.name == "w_flip"))
    np.testing.assert_array_equal(w, numpy_helper.to_array(model.graph.initializer[0])[:, :, ::-1, ::-1])
    np.testing.assert_allclose(_run(folded, x), before, rtol=1e-6, atol=1e-6)
    assert fold_constants(folded) == 0  # nothing left to fold


def test_nothing_to_fold_leaves_the_model_as_it_was():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    before = model.SerializeToString()
    assert fold_constants(model) == 0
    assert model.SerializeToString() == before
