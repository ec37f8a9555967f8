"""Small stand-in stage models written directly as ONNX (no torch), with the spec's names and shapes,
for the runtime's and the benchmark's tests.

Each stage: output = mask * sigmoid(f(inputs)) + (1 - mask) * first image input, where f is two 1x1
convolutions plus a per-image term through two wide matrices (so the weights have a real, tunable size:
about 24 bytes per unit of ``width``) and, for MAT, a term from every noise input. Deterministic weights
from ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trt_inpaint.export.manifest import Artefact, Manifest, StageRecord, write_manifest
from trt_inpaint.export.spec import STAGES, Precision, Role, Stage, onnx_filename, spec

OPSET = 17
HIDDEN = 8  # channels between the two 1x1 convolutions
# distinct stage sizes, so that a memory budget below the total evicts and reloads for real
BENCH_WIDTHS = {
    Stage.LAMA: 1_600_000,
    Stage.LAMA_DENOISER: 400_000,
    Stage.MAT: 2_000_000,
    Stage.COMBINER: 600_000,
    Stage.FINAL_DENOISER: 400_000,
}


def _value_info(t) -> onnx.ValueInfoProto:
    dims = [d if isinstance(d, int) else d for d in t.shape]
    return helper.make_tensor_value_info(t.name, TensorProto.FLOAT, dims)


def standin_model(stage: Stage, width: int = 100_000, seed: int = 0, resident: int = 0) -> onnx.ModelProto:
    """``resident``: bytes of a zero constant that ONNX Runtime computes (ConstantOfShape, folded) when the
    session loads and keeps for a Gather at run time, so loading holds about that much more memory than
    the file's size (a few hundred bytes of it); the output is unchanged."""
    s = spec(stage)
    rng = np.random.default_rng([seed, list(STAGES).index(stage)])
    images = [t.name for t in s.inputs if t.role is Role.IMAGE]
    noise = [t for t in s.inputs if t.role is Role.NOISE]
    cin = 3 * len(images) + 1
    inits = {
        "w1": rng.standard_normal((HIDDEN, cin, 1, 1)).astype(np.float32) * 0.5,
        "b1": rng.standard_normal(HIDDEN).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((3, HIDDEN, 1, 1)).astype(np.float32) * 0.5,
        "b2": rng.standard_normal(3).astype(np.float32) * 0.1,
        "wa": (rng.standard_normal((3, width)) / np.sqrt(3)).astype(np.float32),
        "wb": (rng.standard_normal((width, 3)) / np.sqrt(width)).astype(np.float32),
        "one": np.ones(1, np.float32),
        "shape4": np.array([-1, 3, 1, 1], np.int64),
        "shape1": np.array([-1, 1, 1, 1], np.int64),
    }
    n = helper.make_node
    nodes = [
        n("Concat", [*images, "mask"], ["x"], axis=1),
        n("Conv", ["x", "w1", "b1"], ["h1"]),
        n("Relu", ["h1"], ["h1r"]),
        n("Conv", ["h1r", "w2", "b2"], ["h2"]),
        n("ReduceMean", [images[0]], ["g"], axes=[2, 3], keepdims=0),
        n("MatMul", ["g", "wa"], ["ga"]),
        n("Tanh", ["ga"], ["gt"]),
        n("MatMul", ["gt", "wb"], ["gb"]),
        n("Reshape", ["gb", "shape4"], ["gr"]),
        n("Add", ["h2", "gr"], ["h3"]),
    ]
    last = "h3"
    for i, t in enumerate(noise):
        axes = list(range(1, len(t.shape)))
        nodes += [
            n("ReduceMean", [t.name], [f"n{i}"], axes=axes, keepdims=0),
            n("Reshape", [f"n{i}", "shape1"], [f"n{i}r"]),
            n("Add", [last, f"n{i}r"], [f"h3n{i}"]),
        ]
        last = f"h3n{i}"
    if resident:
        inits["resident_shape"] = np.array([resident // 4], np.int64)
        inits["zero"] = np.zeros(1, np.float32)
        zero = numpy_helper.from_array(np.zeros(1, np.float32))
        nodes += [
            n("ConstantOfShape", ["resident_shape"], ["resident"], value=zero),
            n("ReduceMax", ["mask"], ["mmax"], keepdims=0),
            n("Mul", ["mmax", "zero"], ["m0"]),
            n("Cast", ["m0"], ["ridx"], to=TensorProto.INT64),
            n("Gather", ["resident", "ridx"], ["rval"]),  # (1,): 0.0, read at run time
            n("Add", [last, "rval"], ["h3r"]),
        ]
        last = "h3r"
    nodes += [
        n("Sigmoid", [last], ["pred"]),
        n("Sub", ["one", "mask"], ["keep"]),
        n("Mul", ["mask", "pred"], ["a"]),
        n("Mul", ["keep", images[0]], ["b"]),
        n("Add", ["a", "b"], [s.output_names[0]]),
    ]
    graph = helper.make_graph(
        nodes,
        f"standin_{s.name}",
        [_value_info(t) for t in s.inputs],
        [_value_info(t) for t in s.outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def standin_flops(stage: Stage, size: int, width: int, batch: int = 1) -> float:
    """The dense FLOPs of ``standin_model(stage, width)`` at ``size``: two 1x1 convs and two matmuls."""
    cin = 3 * sum(t.role is Role.IMAGE for t in spec(stage).inputs) + 1
    return 2.0 * batch * (size * size * (HIDDEN * cin + 3 * HIDDEN) + 2 * 3 * width)


def stage_record(
    stage: Stage, source: dict | None = None, artefacts: dict[str, Artefact] | None = None
) -> StageRecord:
    """A manifest record for ``stage`` with the spec's I/O; by default no weights source and no artefacts
    (so the runtime finds no facts beyond the record itself)."""
    s = spec(stage)
    return StageRecord(
        stage=stage.value,
        precision=Precision.FP32.value,
        source=source if source is not None else {"standin": True},
        random_init=False,
        inputs=[{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in s.inputs],
        outputs=[{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in s.outputs],
        profile={},
        artefacts=artefacts or {},
    )


def write_records(folder: Path, *records: StageRecord) -> Path:
    """manifest.json of ``folder`` holding ``records``, through the exporter's writer."""
    return write_manifest(folder, Manifest(stages={r.stage: r for r in records}))


def write_standins(
    folder: Path, width: int | dict[Stage, int] = 100_000, seed: int = 0, stages=tuple(Stage)
) -> Path:
    """fp32 stand-ins for ``stages`` in ``folder`` (created), plus a manifest naming them (no weights
    source, no artefacts). ``width``: one for all stages, or per stage."""
    folder.mkdir(parents=True, exist_ok=True)
    for st in stages:
        w = width[st] if isinstance(width, dict) else width
        onnx.save(standin_model(st, w, seed), str(folder / onnx_filename(st, Precision.FP32)))
    write_records(folder, *(stage_record(st) for st in stages))
    return folder


def fill_model(stage: Stage, a: float, b: float) -> onnx.ModelProto:
    """A stage graph that writes ``a + b * image`` into the hole and copies the image elsewhere (``image``:
    the stage's first image input); ``fill_model(stage, 0.5, 0)`` is the constant-0.5 graph that a
    whole-image fidelity figure lets through."""
    s = spec(stage)
    image = next(t.name for t in s.inputs if t.role is Role.IMAGE)
    n = helper.make_node
    nodes = [
        n("Mul", [image, "b"], ["bi"]),
        n("Add", ["bi", "a"], ["pred"]),
        n("Sub", ["one", "mask"], ["keep"]),
        n("Mul", ["mask", "pred"], ["hole"]),
        n("Mul", ["keep", image], ["known"]),
        n("Add", ["hole", "known"], [s.output_names[0]]),
    ]
    consts = {"a": a, "b": b, "one": 1.0}
    graph = helper.make_graph(
        nodes,
        f"fill_{s.name}",
        [_value_info(t) for t in s.inputs],
        [_value_info(t) for t in s.outputs],
        [numpy_helper.from_array(np.array([v], np.float32), k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
