"""Checking a mixed fp16 model on the CPU: an fp16-storage simulation of it, and output comparison.

ONNX Runtime's CPU provider computes most fp16 ops in fp32 and drops the casts between two such ops, so
running the mixed model itself hides fp16 overflow between them. ``simulate`` instead builds the fp32
graph with a Cast(fp16) -> Cast(fp32) pair on every tensor the mixed model stores in fp16 and fp16-rounded
weights; ``compare`` scores outputs against the fp32 reference over the hole. Neither sees fp16 accumulation
inside kernels: the real fp16 arithmetic check is a GPU run (``CPU_CAVEAT``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trt_inpaint.errors import InputError
from trt_inpaint.export.segmented import Feeds, infer
from trt_inpaint.export.spec import MASK

if TYPE_CHECKING:
    import onnx

FP16_MAX = 65504.0
CPU_CAVEAT = (
    "CPU check: ONNX Runtime CPU computes most fp16 ops in fp32 and keeps fp32 between them; the fp16-sim "
    "rows round every fp16-stored tensor and weight, so they catch storage overflow and rounding, not fp16 "
    "accumulation inside kernels; the real fp16 arithmetic check is a GPU run"
)


@dataclass
class Comparison:
    """Test outputs against reference outputs over the HOLE pixels only (mask 1, every channel).

    Every stage copies the known pixels through, so whole-image figures mostly score that copy: a graph
    writing a constant 0.5 into a hole of 5-9 % of the image scores 40-55 dB over the whole image. NaN/inf
    are counted everywhere. ``reference_std`` (the reference's spread over the hole: the mean over images
    and channels of the std over hole pixels) says whether the comparison can see anything: against a
    nearly constant reference any near-constant output scores well."""

    max_abs_diff: float
    psnr_db: float
    nonfinite: int
    reference_std: float = 0.0
    hole_values: int = 0  # values compared (hole pixels x channels)

    @property
    def finite(self) -> bool:
        return self.nonfinite == 0


def fp32_nodes(model: onnx.ModelProto, islands: Sequence[str]) -> set[str]:
    """Names of the nodes the mixed model runs in fp32 (islands + onnxconverter-common's default ops)."""
    from onnxconverter_common import float16

    blocked = set(islands)
    ops = set(float16.DEFAULT_OP_BLOCK_LIST)
    return {n.name for n in model.graph.node if n.name in blocked or n.op_type in ops}


def round_fp16(x: np.ndarray) -> np.ndarray:
    """fp16 rounding as the converter does for weights (tiny values clamp to 2^-24, not to 0)."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):
        tiny = (x != 0) & (np.abs(x) < 2.0**-24)
        x = np.where(tiny, np.sign(x) * 2.0**-24, np.clip(x, -FP16_MAX, FP16_MAX))
        return x.astype(np.float16).astype(np.float32)


def simulate(model: onnx.ModelProto, islands: Sequence[str]) -> onnx.ModelProto:
    """The fp32 graph with fp16 storage made explicit: every float tensor an fp16 node writes, and every
    float input an fp16 node reads from an fp32 source, passes Cast(fp16) -> Cast(fp32); weights read by
    fp16 nodes are rounded to fp16. ONNX Runtime keeps explicit casts, so overflow and rounding show."""
    import onnx
    from onnx import helper, numpy_helper

    m = infer(model)
    g = m.graph
    keep32 = fp32_nodes(m, islands)
    float_t = onnx.TensorProto.FLOAT
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
    inits = {i.name: i for i in g.initializer}
    for i in inits.values():
        types[i.name] = i.data_type
    producer = {o: n for n in g.node for o in n.output if o}
    outputs = {o.name for o in g.output}
    ordered: list = []
    rounded: dict[str, str] = {}

    def rounded_name(t: str) -> str:
        if t not in rounded:
            r = rounded[t] = f"{t}__fp16sim"
            if t in inits:
                g.initializer.append(numpy_helper.from_array(round_fp16(numpy_helper.to_array(inits[t])), r))
            else:
                ordered.append(
                    helper.make_node("Cast", [t], [r + "_h"], to=onnx.TensorProto.FLOAT16, name=r + "_h")
                )
                ordered.append(helper.make_node("Cast", [r + "_h"], [r], to=float_t, name=r))
        return rounded[t]

    out_map: dict[str, str] = {}  # fp16 node output -> its rounded copy
    for n in list(g.node):
        fp16_node = n.name not in keep32
        for k, t in enumerate(n.input):
            if not t or types.get(t) != float_t:
                continue
            if t in out_map:
                n.input[k] = out_map[t]
            elif fp16_node and (producer.get(t) is None or producer[t].name in keep32):
                n.input[k] = rounded_name(t)
        ordered.append(n)
        if fp16_node:
            for j, t in enumerate(n.output):
                if t and types.get(t) == float_t:
                    if t in outputs:  # a graph output keeps its name and gets the rounded value
                        n.output[j] = t + "__raw"
                        r = rounded_name(t + "__raw")
                        ordered.append(helper.make_node("Identity", [r], [t], name=t + "__out"))
                    else:
                        out_map[t] = rounded_name(t)
    del g.node[:]
    g.node.extend(ordered)
    del g.value_info[:]
    return m


def hole_masks(feeds: Sequence[Feeds]) -> list[np.ndarray]:
    """The mask input (1 = hole) of each feed: the region ``compare`` scores."""
    missing = [k for k, f in enumerate(feeds) if MASK.name not in f]
    if missing:
        raise ValueError(f"feed {missing[0]} has no {MASK.name!r} input: fidelity is measured over the hole")
    return [np.asarray(f[MASK.name]) for f in feeds]


def compare(
    reference: Sequence[np.ndarray], test: Sequence[np.ndarray], holes: Sequence[np.ndarray]
) -> Comparison:
    """max |diff|, PSNR (peak 1, images in [0,1]) over the hole pixels, and the non-finite count of
    ``test`` against ``reference``. ``holes``: one (N, 1, H, W) mask per output, 1 = hole."""
    if not (len(reference) == len(test) == len(holes)):
        raise ValueError(f"{len(reference)} reference, {len(test)} test outputs and {len(holes)} masks")
    nonfinite = sum(int(np.count_nonzero(~np.isfinite(t))) for t in test)
    diffs, spreads = [], []
    for r, t, m in zip(reference, test, holes, strict=True):
        r = np.asarray(r, dtype=np.float64)
        hole = np.broadcast_to(np.asarray(m) > 0.5, r.shape)
        t = np.nan_to_num(np.asarray(t, dtype=np.float64), nan=1e9, posinf=1e9, neginf=-1e9)
        diffs.append((t - r)[hole])
        for n in range(r.shape[0]):
            spreads += [float(r[n, c][hole[n, c]].std()) for c in range(r.shape[1]) if hole[n, c].any()]
    d = np.concatenate(diffs) if diffs else np.zeros(0)
    if d.size == 0:
        raise InputError("no hole pixels to compare: every mask is empty (fidelity is taken over the hole)")
    mse = float(np.mean(d**2))
    psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    return Comparison(float(np.abs(d).max()), psnr, nonfinite, float(np.mean(spreads)), int(d.size))
