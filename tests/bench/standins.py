"""Small ONNX stand-ins of the five stages for the benchmark's tests: spec names and shapes, real weights.

output = mask * sigmoid(conv1x1(cat(images, mask)) + pooled term) + (1 - mask) * first image. The pooled
term passes a per-image mean through a (3, width) and a (width, 3) matrix, so each stage holds
``width * 24`` bytes of weights: distinct sizes make the memory budget evict and reload for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trt_inpaint.export.spec import MANIFEST_NAME, STAGES, Precision, Role, Stage, onnx_filename, spec

WIDTHS = {  # weights: about 24 bytes per unit of width
    Stage.LAMA: 1_600_000,
    Stage.LAMA_DENOISER: 400_000,
    Stage.MAT: 2_000_000,
    Stage.COMBINER: 600_000,
    Stage.FINAL_DENOISER: 400_000,
}


def standin(stage: Stage, width: int) -> onnx.ModelProto:
    s = spec(stage)
    rng = np.random.default_rng(list(STAGES).index(stage))
    images = [t.name for t in s.inputs if t.role is Role.IMAGE]
    cin = 3 * len(images) + 1
    inits = [
        numpy_helper.from_array((rng.standard_normal((3, cin, 1, 1)) * 0.5).astype(np.float32), "w"),
        numpy_helper.from_array((rng.standard_normal((3, width)) / np.sqrt(3)).astype(np.float32), "wa"),
        numpy_helper.from_array((rng.standard_normal((width, 3)) / np.sqrt(width)).astype(np.float32), "wb"),
        numpy_helper.from_array(np.ones(1, np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Concat", [*images, "mask"], ["x"], axis=1),
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("ReduceMean", [images[0]], ["m"], axes=[2, 3], keepdims=0),  # (N, 3)
        helper.make_node("MatMul", ["m", "wa"], ["h"]),
        helper.make_node("MatMul", ["h", "wb"], ["g"]),
        helper.make_node("Unsqueeze", ["g", "ax"], ["g4"]),
        helper.make_node("Add", ["c", "g4"], ["pre"]),
        helper.make_node("Sigmoid", ["pre"], ["pred"]),
        helper.make_node("Mul", ["mask", "pred"], ["a"]),
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["keep", images[0]], ["b"]),
        helper.make_node("Add", ["a", "b"], ["output"]),
    ]
    inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "ax"))
    graph = helper.make_graph(
        nodes,
        f"standin_{stage.value}",
        [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)) for t in s.inputs],
        [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)) for t in s.outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def standin_flops(stage: Stage, size: int, batch: int = 1) -> float:
    """The dense FLOPs of ``standin(stage)`` at ``size``: the 1x1 conv and the two matmuls."""
    cin = 3 * sum(t.role is Role.IMAGE for t in spec(stage).inputs) + 1
    return 2.0 * batch * (3 * size * size * cin + 2 * 3 * WIDTHS[stage])


def write_standins(folder: Path, manifest: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        onnx.save(standin(stage, WIDTHS[stage]), str(folder / onnx_filename(stage, Precision.FP32)))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest or {"note": "benchmark test stand-ins"}))
    return folder
