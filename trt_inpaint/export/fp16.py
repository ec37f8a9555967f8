"""Mixed fp16 ONNX with fp32 islands chosen by measurement.

1. Run the calibration feeds through the fp32 graph in ONNX Runtime (CPU) with every float tensor exposed
   (segment by segment, to bound memory), and record per tensor: max |x|, the rounding error of an fp16 cast
   relative to the tensor's scale, and, for divisors (Div, Reciprocal, Log, Pow), the worst per-element
   relative error (a value flushed to 0 counts as 100 %).
2. A tensor that would overflow (max |x| > headroom * 65504), lose its scale in fp16's subnormal range,
   or feed a division badly is kept in fp32: its producer and all its consumers are blocked, so it never
   passes through fp16 storage. Weights (initializers) are checked the same way.
3. Convert with onnxconverter-common (keep_io_types=True, node_block_list=islands), remove the
   fp32 -> fp16 -> fp32 cast round trips between blocked nodes, and verify against the fp32 graph on the
   calibration feeds (PSNR over the hole pixels: known pixels pass through both graphs); while PSNR <
   target or any output is non-finite, grow the islands by the largest-magnitude tensors and convert again.

Verification runs on the CPU through an fp16-storage simulation (``fp16_check.simulate``); the
measurement runs the graph in parts (``segmented``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from trt_inpaint.export.fold import constants
from trt_inpaint.export.fp16_check import CPU_CAVEAT, FP16_MAX, Comparison, compare, hole_masks, simulate
from trt_inpaint.export.segmented import Feeds, SegmentedRun, infer, node_inputs, run_onnx, segments

if TYPE_CHECKING:
    import onnx

FP16_MIN_NORMAL = 2.0**-14
_DIVISOR_INPUTS = {"Div": (1,), "Reciprocal": (0,), "Log": (0,), "Pow": (0,)}


@dataclass(frozen=True)
class Fp16Options:
    headroom: float = 0.5  # tensors with max |x| above headroom * 65504 stay fp32
    # ... or whose fp16 rounding error exceeds this fraction of max |x| (the tensor lives in fp16's subnormal
    # range: values flushed to 0 matter only then, or when they divide, below)
    scale_error: float = 1e-3
    divisor_error: float = 1e-2  # ... or, as a divisor, with a per-element relative error above this
    target_psnr: float = 45.0  # verification: fp16 vs fp32 ONNX output over the calibration holes (dB)
    grow_fraction: float = 0.05  # verification failed: block this fraction of the remaining tensors more
    max_rounds: int = 4
    chunk_bytes: int = 1 << 30  # float outputs of one graph segment (memory bound of the measurement)

    def key(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "chunk_bytes"}


@dataclass
class TensorStats:
    max_abs: float = 0.0
    max_err: float = 0.0  # max |fp16(x) - x| (computed where it can matter: see ``update``)
    count: int = 0
    divisor_rel: float = 0.0  # worst |fp16(x) - x| / |x| over nonzero x (divisor tensors only)
    nonfinite_fp32: bool = False

    def update(self, x: np.ndarray, divisor: bool) -> None:
        """Fold one tensor in. Two passes for most tensors: fp16 rounding of normal numbers is within
        2^-11 of |x| <= max |x|, so the fp16 cast is only computed for tensors whose max |x| is below
        fp16's smallest normal number (subnormal range) and for divisors."""
        x = np.asarray(x, dtype=np.float32)
        if x.size == 0:
            return
        hi, lo = float(x.max()), float(x.min())
        if not (math.isfinite(hi) and math.isfinite(lo)):
            self.nonfinite_fp32 = True
            x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
            hi, lo = float(x.max()), float(x.min())
        mx = max(hi, -lo)
        self.max_abs = max(self.max_abs, mx)
        self.count += x.size
        if mx >= FP16_MIN_NORMAL and not divisor:
            return
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            err = np.abs(x.astype(np.float16).astype(np.float32) - x)
            if mx < FP16_MIN_NORMAL:
                self.max_err = max(self.max_err, float(err.max()))
            if divisor:
                a = np.abs(x)
                nz = a > 0
                if nz.any():
                    rel = np.nan_to_num(err[nz] / a[nz], nan=np.inf)
                    self.divisor_rel = max(self.divisor_rel, float(rel.max()))

    def reasons(self, opts: Fp16Options, divisor: bool) -> list[str]:
        out = []
        if self.max_abs > opts.headroom * FP16_MAX:
            out.append(f"overflow: max|x|={self.max_abs:.4g} > {opts.headroom:g}*65504")
        if (
            self.max_abs > 0
            and self.max_abs <= opts.headroom * FP16_MAX
            and self.max_err / self.max_abs > opts.scale_error
        ):
            out.append(
                f"subnormal: max|x|={self.max_abs:.3g}, fp16 error {self.max_err / self.max_abs:.2%} of it"
            )
        if divisor and self.divisor_rel > opts.divisor_error:
            out.append(f"divisor: per-element fp16 error up to {min(self.divisor_rel, 1e9):.3g}")
        return out


@dataclass
class Island:
    """One node kept in fp32 and why."""

    node: str
    op: str
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass
class Fp16Result:
    islands: list[Island]
    comparison: Comparison
    rounds: int
    passed: bool
    n_nodes: int
    n_tensors_measured: int
    note: str = CPU_CAVEAT
    reference: list[np.ndarray] = field(default_factory=list, repr=False)  # fp32 outputs on the feeds

    def to_dict(self) -> dict:
        """For the manifest."""
        c = self.comparison
        return {
            "fp32_islands": [asdict(i) for i in self.islands],
            "n_fp32_nodes": len(self.islands),
            "n_nodes": self.n_nodes,
            "n_tensors_measured": self.n_tensors_measured,
            "verification": {
                "psnr_db": round(c.psnr_db, 2) if math.isfinite(c.psnr_db) else "inf",
                "max_abs_diff": c.max_abs_diff,
                "nonfinite": c.nonfinite,
                "reference_hole_std": round(c.reference_std, 4),
                "passed": self.passed,
                "rounds": self.rounds,
                "method": "fp16 storage simulation vs fp32 ONNX, ONNX Runtime CPU, calibration set; "
                "PSNR and max|diff| over the hole pixels (mask 1), NaN/inf counted everywhere",
            },
            "note": self.note,
        }


class GraphIndex:
    """Producers, consumers and float tensor types of a (shape-inferred) graph."""

    def __init__(self, model: onnx.ModelProto):
        import onnx
        import onnx.numpy_helper

        g = model.graph
        self.producer: dict[str, onnx.NodeProto] = {o: n for n in g.node for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            for i in node_inputs(n):
                self.consumers.setdefault(i, []).append(n)
        types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
        float_t = onnx.TensorProto.FLOAT
        outputs = {o.name for o in g.output}
        self.float_tensors = [
            o for n in g.node for o in n.output if o and types.get(o) == float_t and o not in outputs
        ]
        self.graph_outputs = [o.name for o in g.output]
        consts = constants(model)
        self.divisors: set[str] = set()
        for n in g.node:
            if n.op_type == "Pow" and len(n.input) > 1 and n.input[1] in consts:
                if (onnx.numpy_helper.to_array(consts[n.input[1]]) >= 0).all():
                    continue  # x ** positive: not a division
            for idx in _DIVISOR_INPUTS.get(n.op_type, ()):
                if idx < len(n.input):
                    self.divisors.add(n.input[idx])


# ---- measurement -------------------------------------------------------------------------------------


def collect_stats(
    model: onnx.ModelProto,
    feeds: Sequence[Feeds],
    opts: Fp16Options,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, TensorStats], list[np.ndarray]]:
    """Stats of every float intermediate over the calibration feeds, and the fp32 outputs."""
    from onnx import numpy_helper

    model = infer(model)
    index = GraphIndex(model)
    measured = set(index.float_tensors)
    runner = SegmentedRun(model, segments(model, feeds[0], opts.chunk_bytes))
    stats: dict[str, TensorStats] = {}
    outputs: list[np.ndarray] = []

    def visit(name: str, arr: np.ndarray) -> None:
        if name in measured and arr.dtype == np.float32:
            stats.setdefault(name, TensorStats()).update(arr, name in index.divisors)

    for k, f in enumerate(feeds):
        if progress:
            progress(
                f"measuring {len(measured)} tensors: image {k + 1}/{len(feeds)}, {len(runner.segments)} parts"
            )
        outputs.append(runner.run(f, visit)[index.graph_outputs[0]])
    for init in model.graph.initializer:
        if init.data_type == 1:  # FLOAT
            st = TensorStats()
            st.update(numpy_helper.to_array(init), init.name in index.divisors)
            stats[init.name] = st
    return stats, outputs


def select_islands(
    model: onnx.ModelProto, stats: dict[str, TensorStats], opts: Fp16Options
) -> dict[str, Island]:
    """Nodes to keep in fp32: producer and consumers of every tensor that fp16 would damage."""
    index = GraphIndex(infer(model))
    islands: dict[str, Island] = {}
    for name, st in stats.items():
        for reason in st.reasons(opts, name in index.divisors):
            keep_tensor_fp32(index, name, f"{name}: {reason}", islands)
    return islands


def keep_tensor_fp32(index: GraphIndex, tensor: str, reason: str, islands: dict[str, Island]) -> None:
    nodes = list(index.consumers.get(tensor, []))
    if tensor in index.producer:
        nodes.append(index.producer[tensor])
    for n in nodes:
        islands.setdefault(n.name, Island(n.name, n.op_type)).add(reason)


# ---- conversion ----------------------------------------------------------------------------------------


def convert(model: onnx.ModelProto, block_nodes: Sequence[str]) -> onnx.ModelProto:
    """fp16 copy of ``model`` with ``block_nodes`` (and onnxconverter-common's default ops) kept in fp32."""
    import onnx
    from onnxconverter_common import float16

    m = onnx.ModelProto()
    m.CopyFrom(model)
    blocked = set(block_nodes)
    op_block = set(float16.DEFAULT_OP_BLOCK_LIST)
    _split_shared_initializers(m, lambda n: n.name in blocked or n.op_type in op_block)
    # its own cast clean-up crashes on casts with several consumers (a list where a node is expected);
    # _remove_round_trips below does that job, so it is switched off for the call
    saved = float16.remove_unnecessary_cast_node
    float16.remove_unnecessary_cast_node = lambda graph: None
    try:
        with warnings.catch_warnings():  # it warns for every weight it clamps
            warnings.simplefilter("ignore")
            m = float16.convert_float_to_float16(
                m,
                min_positive_val=2.0**-24,
                max_finite_val=FP16_MAX,
                keep_io_types=True,
                op_block_list=sorted(op_block),
                node_block_list=sorted(blocked),
            )
    finally:
        float16.remove_unnecessary_cast_node = saved
    _fix_float_casts(m)
    _remove_round_trips(m)
    return m


def _fix_float_casts(model: onnx.ModelProto) -> None:
    """The converter retypes a converted Cast(to=float32)'s output as fp16 but leaves ``to``: fix ``to``."""
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    for n in model.graph.node:
        if n.op_type == "Cast" and types.get(n.output[0]) == 10:
            for a in n.attribute:
                if a.name == "to" and a.i == 1:
                    a.i = 10


def _split_shared_initializers(model: onnx.ModelProto, is_blocked: Callable) -> None:
    """Give fp16 consumers their own copy of a float initializer that a blocked node also reads (the
    converter would otherwise keep it fp32 for both and break the fp16 consumer's types)."""
    g = model.graph
    inits = {i.name: i for i in g.initializer if i.data_type == 1}
    users: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            if i in inits:
                users.setdefault(i, []).append(n)
    for name, nodes in users.items():
        kinds = {bool(is_blocked(n)) for n in nodes}
        if len(kinds) < 2:
            continue
        copy = g.initializer.add()
        copy.CopyFrom(inits[name])
        copy.name = name + "__fp16"
        for n in nodes:
            if not is_blocked(n):
                for k, i in enumerate(n.input):
                    if i == name:
                        n.input[k] = copy.name


def _remove_round_trips(model: onnx.ModelProto) -> None:
    """Rewire Cast(fp32->fp16) -> Cast(fp16->fp32) so fp32 consumers read the fp32 source directly."""
    g = model.graph

    def cast_to(n) -> int | None:
        if n.op_type != "Cast":
            return None
        return next((a.i for a in n.attribute if a.name == "to"), None)

    producer = {o: n for n in g.node for o in n.output}
    graph_outputs = {o.name for o in g.output}
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    implicit = {i for n in g.node for i in node_inputs(n)} - {i for n in g.node for i in n.input}
    rename: dict[str, str] = {}
    drop: set[int] = set()
    for n in g.node:
        if cast_to(n) != 1 or n.output[0] in implicit:  # subgraphs read it by name: keep it
            continue
        src = producer.get(n.input[0])
        if src is None or cast_to(src) != 10 or n.output[0] in graph_outputs or types.get(src.input[0]) != 1:
            continue
        rename[n.output[0]] = src.input[0]
        drop.add(id(n))
    if not rename:
        return
    keep = [n for n in g.node if id(n) not in drop]
    for n in keep:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
    used = {i for n in keep for i in node_inputs(n)} | graph_outputs
    keep = [n for n in keep if not (cast_to(n) == 10 and n.output[0] not in used)]
    del g.node[:]
    g.node.extend(keep)


def make_fp16(
    fp32_model: onnx.ModelProto,
    feeds: Sequence[Feeds],
    opts: Fp16Options | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[onnx.ModelProto, Fp16Result]:
    """Measure, choose the islands, convert and verify (growing the islands while verification fails)."""
    if not feeds:
        raise ValueError("fp16 conversion needs at least one calibration feed")
    opts = opts or Fp16Options()
    model = infer(fp32_model)
    holes = hole_masks(feeds)
    stats, reference = collect_stats(model, feeds, opts, progress)
    islands = select_islands(model, stats, opts)
    index = GraphIndex(model)
    ranked = sorted((t for t in index.float_tensors if t in stats), key=lambda t: -stats[t].max_abs)
    rounds = 0
    while True:
        rounds += 1
        if progress:
            progress(f"converting (round {rounds}, {len(islands)} fp32 nodes)")
        fp16 = convert(model, list(islands))
        comp = compare(reference, run_onnx(simulate(model, list(islands)).SerializeToString(), feeds), holes)
        passed = comp.finite and comp.psnr_db >= opts.target_psnr
        if passed or rounds >= opts.max_rounds:
            break
        kept = {t for t in ranked if all(n.name in islands for n in index.consumers.get(t, []))}
        todo = [t for t in ranked if t not in kept]
        if not todo:
            break
        for t in todo[: max(1, math.ceil(opts.grow_fraction * len(ranked)))]:
            why = (
                f"verification round {rounds}: PSNR {comp.psnr_db:.1f} dB < {opts.target_psnr:g}, "
                f"max|x|={stats[t].max_abs:.3g}"
            )
            keep_tensor_fp32(index, t, f"{t}: {why}", islands)
    result = Fp16Result(
        islands=sorted(islands.values(), key=lambda i: i.node),
        comparison=comp,
        rounds=rounds,
        passed=passed,
        n_nodes=len(model.graph.node),
        n_tensors_measured=len(stats),
        reference=reference,
    )
    return fp16, result
