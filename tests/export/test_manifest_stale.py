"""The manifest's records against the files themselves, and re-runs that rebuild exactly the stale artefacts.

One export from weights files (the light stages at full width, a small engine profile, TensorRT-RTX on the
CPU): lama_denoiser, and the combiner it feeds. Then: a changed combiner weights file rebuilds the
combiner's three artefacts and nothing of lama_denoiser; a damaged fp32 ONNX, or fp16 ONNX, rebuilds that
file alone (the export is deterministic, so what depends on it is current again).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import onnx
import pytest

from trt_inpaint.export import spec as S
from trt_inpaint.export.build import Exporter, ExportOptions
from trt_inpaint.export.calibration import CalibrationOptions
from trt_inpaint.export.engine import Builder
from trt_inpaint.models import combiner, denoiser
from trt_inpaint.models.checkpoints import save_safetensors

STAGES = (S.Stage.LAMA_DENOISER, S.Stage.COMBINER)
KINDS = ("onnx_fp32", "onnx_fp16", "engine")
# an island's reason: "<tensor>: <why>: <detail>", <why> from the measurement or the verification rounds
REASON = re.compile(r"^(?P<tensor>.+?): (?P<why>overflow|subnormal|divisor|verification round \d+): \S.*$")


def _opts(out: Path, weights: dict[S.Stage, Path]) -> ExportOptions:
    return ExportOptions(
        out_dir=out, weights=weights, stages=STAGES, builder=Builder.TENSORRT_RTX, min_size=64,
        max_size=128, max_batch=1, calibration=CalibrationOptions(size=64, max_images=2),
    )  # fmt: skip


def _weights(folder: Path, combiner_seed: int) -> dict[S.Stage, Path]:
    folder.mkdir(exist_ok=True)
    return {
        S.Stage.LAMA_DENOISER: save_safetensors(
            denoiser.random_init_(denoiser.denoiser_default(), 1), folder / "lama_denoiser.safetensors"
        ),
        S.Stage.COMBINER: save_safetensors(
            combiner.random_init_(combiner.combiner_default(), combiner_seed), folder / "combiner.safetensors"
        ),
    }


def _files(out: Path) -> dict[str, tuple[int, str]]:
    """file name -> (mtime_ns, sha256) of every artefact in the folder."""
    return {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(out.iterdir())
        if p.suffix in (".onnx", ".engine")
    }


def _status(reports) -> dict[str, str]:
    return {r.stage.value: r.status for r in reports}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("stale")
    weights = _weights(root / "weights", combiner_seed=2)
    out = root / "engines"
    t0 = time.perf_counter()
    manifest, reports = Exporter(_opts(out, weights)).run()
    wall = time.perf_counter() - t0
    assert _status(reports) == dict.fromkeys(
        (s.value for s in STAGES), "built (onnx_fp32, onnx_fp16, engine)"
    )
    return root, out, weights, wall


def test_manifest_records_match_the_files(exported):
    """sha256 and size of every artefact and weights file as hashlib and stat see them; build times > 0
    and within the export's wall time; precision; the engine's builder and targets."""
    _, out, weights, wall = exported
    data = json.loads((out / S.MANIFEST_NAME).read_text())
    assert data["random_init"] is False and data["warning"] is None
    for stage in STAGES:
        rec = data["stages"][stage.value]
        assert rec["precision"] == "fp16" and rec["random_init"] is False
        assert rec["source"]["sha256"] == hashlib.sha256(weights[stage].read_bytes()).hexdigest()
        assert set(rec["artefacts"]) == set(KINDS)
        for kind in KINDS:
            a = rec["artefacts"][kind]
            path = out / a["file"]
            assert a["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), (stage, kind)
            assert a["bytes"] == path.stat().st_size
            assert 0 < a["seconds"] <= wall, (stage, kind, a["seconds"], wall)
        assert sum(a["seconds"] for a in rec["artefacts"].values()) <= wall
        assert rec["artefacts"]["onnx_fp32"]["file"] == S.onnx_filename(stage, S.Precision.FP32)
        assert rec["artefacts"]["onnx_fp16"]["file"] == S.onnx_filename(stage, S.Precision.FP16)
        engine = rec["artefacts"]["engine"]["info"]
        assert engine["builder"] == "tensorrt-rtx" and engine["target"]["compute_capabilities"]
        assert rec["profile"]["mask"] == [[1, 1, 64, 64], [1, 1, 512, 512], [1, 1, 512, 512]]


def test_fp16_record_islands_and_verification(exported):
    """Each fp32 island is a node of the fp32 graph with its op; each of its reasons is non-empty, of a
    known kind, and names a tensor that node reads or writes. The verification is over the hole, against
    a spread reference."""
    _, out, _, _ = exported
    data = json.loads((out / S.MANIFEST_NAME).read_text())
    n_islands = 0
    for stage in STAGES:
        info = data["stages"][stage.value]["artefacts"]["onnx_fp16"]["info"]
        graph = onnx.load(str(out / S.onnx_filename(stage, S.Precision.FP32))).graph
        nodes = {n.name: n for n in graph.node}
        assert info["n_fp32_nodes"] == len(info["fp32_islands"]) and info["n_nodes"] == len(graph.node)
        for island in info["fp32_islands"]:
            node = nodes[island["node"]]
            assert island["op"] == node.op_type
            assert island["reasons"], island
            for reason in island["reasons"]:
                m = REASON.match(reason)
                assert m, reason
                assert m["tensor"] in (*node.input, *node.output), (reason, node.name)
        n_islands += len(info["fp32_islands"])
        v = info["verification"]
        assert v["passed"] and v["nonfinite"] == 0 and (v["psnr_db"] == "inf" or v["psnr_db"] >= 45)
        assert v["reference_hole_std"] > 0.05 and "hole" in v["method"]
    assert n_islands > 0  # the combiner's HVI divisions keep some nodes fp32: the checks above ran


def test_changed_weights_rebuild_that_stage_only(exported):
    root, out, _, _ = exported
    before = _files(out)
    weights = _weights(root / "weights", combiner_seed=3)  # the same paths, new combiner weights
    manifest, reports = Exporter(_opts(out, weights)).run()
    assert _status(reports) == {
        "lama_denoiser": "reused",
        "combiner": "built (onnx_fp32, onnx_fp16, engine)",
    }
    after = _files(out)
    for name in before:
        if name.startswith("lama_denoiser."):
            assert after[name] == before[name], name  # not even rewritten
        else:
            assert after[name][1] != before[name][1], name  # new contents
    rec = manifest.stages["combiner"]
    assert rec.source["sha256"] == hashlib.sha256(weights[S.Stage.COMBINER].read_bytes()).hexdigest()
    assert {k: a.sha256 for k, a in rec.artefacts.items()} == {
        k: after[a.file][1] for k, a in rec.artefacts.items()
    }


@pytest.mark.parametrize("precision", list(S.FILE_PRECISIONS), ids=str)
def test_damaged_onnx_rebuilds_that_file_only(exported, precision):
    _, out, weights, _ = exported
    Exporter(_opts(out, weights)).run()  # current, whatever ran before
    before = _files(out)
    path = out / S.onnx_filename(S.Stage.LAMA_DENOISER, precision)
    path.write_bytes(path.read_bytes()[:-16] + b"0123456789abcdef")
    _, reports = Exporter(_opts(out, weights)).run()
    assert _status(reports) == {"lama_denoiser": f"built (onnx_{precision})", "combiner": "reused"}
    after = _files(out)
    assert after[path.name][1] == before[path.name][1]  # rebuilt to the same bytes
    assert all(after[n] == before[n] for n in before if n != path.name), "only the damaged file is rewritten"
