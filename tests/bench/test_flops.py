import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_inpaint.bench.flops import count_file, count_model, strip_weights
from trt_inpaint.export.spec import Stage, spec


def _model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _w(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def test_conv_convtranspose_matmul_gemm_einsum_counts():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c", "d"])
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, [3, 8])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [3, 7])
    e = helper.make_tensor_value_info("e", TensorProto.FLOAT, [3, 9])
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], pads=[1, 1, 1, 1], group=2),  # 4 -> 8, 3x3, groups 2
        helper.make_node("ConvTranspose", ["c", "tw"], ["t"], strides=[2, 2]),  # 8 -> 6, 2x2 stride 2
        helper.make_node("MatMul", ["t", "mw"], ["y"]),  # (...,2H,2W) @ (2W, 5)
        helper.make_node("Gemm", ["v", "gw"], ["z"], transB=1),  # (3, 8) x (7, 8)^T
        helper.make_node("Einsum", ["v", "ew"], ["e"], equation="ij,jk->ik"),  # (3,8) x (8,9)
    ]
    m = _model(
        nodes,
        [x, v],
        [y, z, e],
        [_w("cw", 8, 2, 3, 3), _w("tw", 8, 6, 2, 2), _w("mw", 32, 5), _w("gw", 7, 8), _w("ew", 8, 9)],
    )
    fc = count_model(m, {"x": (2, 4, 16, 16), "v": (3, 8)})
    conv = 2 * 2 * 8 * 16 * 16 * 2 * 9
    convt = 2 * 2 * 8 * 16 * 16 * 6 * 4
    matmul = 2 * (2 * 6 * 32 * 5) * 32
    gemm, einsum = 2 * 3 * 7 * 8, 2 * 3 * 8 * 9
    assert fc.by_op == {
        "Conv": conv,
        "ConvTranspose": convt,
        "MatMul": matmul,
        "Gemm": gemm,
        "Einsum": einsum,
    }
    assert fc.total == conv + convt + matmul + gemm + einsum
    assert fc.complete and fc.counted_nodes == 5


def test_matrix_built_from_the_input_size_is_followed():
    """A DFT-like matrix whose side comes from Shape -> Gather -> Range: counted at each size."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c", "d"])
    c = helper.make_tensor
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i3"], ["w"]),
        helper.make_node("Range", ["zero", "w", "one"], ["r"]),
        helper.make_node("Unsqueeze", ["r", "ax1"], ["col"]),
        helper.make_node("Unsqueeze", ["r", "ax0"], ["row"]),
        helper.make_node("Mul", ["col", "row"], ["outer"]),
        helper.make_node("Cast", ["outer"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Cos", ["f"], ["cos"]),
        helper.make_node("MatMul", ["x", "cos"], ["y"]),
    ]
    inits = [
        c("i3", TensorProto.INT64, [], [3]),
        c("zero", TensorProto.INT64, [], [0]),
        c("one", TensorProto.INT64, [], [1]),
        c("ax0", TensorProto.INT64, [1], [0]),
        c("ax1", TensorProto.INT64, [1], [1]),
    ]
    m = _model(nodes, [x], [y], inits)
    for h, w in ((8, 8), (16, 24)):
        fc = count_model(m, {"x": (1, 3, h, w)})
        assert fc.complete
        assert fc.total == 2 * 3 * h * w * w


def test_weights_are_not_needed():
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 128])],
        [_w("w", 64, 128)],
    )
    stripped = strip_weights(m)
    assert not stripped.graph.initializer and "w" in [i.name for i in stripped.graph.input]
    assert count_model(m, {"x": (4, 64)}).total == 2 * 4 * 64 * 128


def test_standin_stages_count_exactly(standin_engines):
    from tests.standins import BENCH_WIDTHS, standin_flops

    for stage in (Stage.LAMA, Stage.COMBINER, Stage.MAT):
        shapes = {t.name: t.concrete(1, 512, 512) for t in spec(stage).inputs}
        fc = count_file(standin_engines / f"{stage.value}.fp32.onnx", shapes)
        assert fc.complete and fc.total == standin_flops(stage, 512, BENCH_WIDTHS[stage])


def test_missing_file_is_an_engine_error(tmp_path):
    from trt_inpaint.errors import EngineError

    with pytest.raises(EngineError, match="not found"):
        count_file(tmp_path / "nope.onnx", {})


def test_counts_are_cached_per_file_version(standin_engines, tmp_path):
    import os
    import shutil

    from trt_inpaint.bench.flops import cache_path, count_file_sizes

    path = tmp_path / "lama.onnx"
    shutil.copy(standin_engines / "lama.fp32.onnx", path)
    sets = [{t.name: t.concrete(1, s, s) for t in spec(Stage.LAMA).inputs} for s in (64, 128)]
    first = count_file_sizes(path, sets)
    assert cache_path().is_file() and len(json.loads(cache_path().read_text())) == 2
    assert [f.total for f in count_file_sizes(path, sets)] == [f.total for f in first]
    os.utime(path, ns=(1, 1))  # another version of the file: counted again, cached beside
    assert [f.total for f in count_file_sizes(path, sets)] == [f.total for f in first]
    assert len(json.loads(cache_path().read_text())) == 4
