"""Engine builder selection and failure modes (TensorRT-RTX builds on this CPU)."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_inpaint.errors import EngineError
from trt_inpaint.export.engine import Builder, build_engine, resolve
from trt_inpaint.export.onnx import check_onnx


def test_auto_picks_tensorrt_then_rtx():
    """tensorrt_rtx is in the dev install (a missing one fails here); full TensorRT wins where present."""
    assert importlib.util.find_spec("tensorrt_rtx") is not None
    want = Builder.TENSORRT if importlib.util.find_spec("tensorrt") else Builder.TENSORRT_RTX
    assert resolve(Builder.AUTO) is want
    assert resolve(Builder.NONE) is Builder.NONE


def _dft_model(path) -> None:
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])
    m = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 8, 8])
    nodes = [
        helper.make_node("Unsqueeze", ["image", "ax"], ["u"]),
        helper.make_node("DFT", ["u", "", "axis"], ["f"]),
        helper.make_node("ReduceSum", ["f", "last"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "mask"], ["output"]),
    ]
    inits = [
        onnx.numpy_helper.from_array(np.array([-1], np.int64), "ax"),
        onnx.numpy_helper.from_array(np.array(3, np.int64), "axis"),
        onnx.numpy_helper.from_array(np.array([-1], np.int64), "last"),
    ]
    graph = helper.make_graph(nodes, "dft", [x, m], [y], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))


def test_dft_graph_is_rejected(tmp_path):
    path = tmp_path / "dft.onnx"
    _dft_model(path)
    with pytest.raises(EngineError, match="DFT"):
        check_onnx(path, "lama_denoiser")


def test_unparsable_graph_is_one_line_engine_error(tmp_path):
    path = tmp_path / "dft.onnx"
    _dft_model(path)
    profile = {"image": ((1, 3, 8, 8),) * 3, "mask": ((1, 1, 8, 8),) * 3}
    with pytest.raises(EngineError) as err:
        build_engine(path, tmp_path / "x.engine", profile, Builder.TENSORRT_RTX)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "x.engine").exists()
