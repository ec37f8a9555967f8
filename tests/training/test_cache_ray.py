"""cache-outputs --ray and evaluate --ray against the same commands without --ray: the same files and numbers
(a local Ray cluster for this module; stand-in stages on the prepared 32x32 set)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.ray_cluster import local_cluster
from tests.standins import write_standins
from trt_inpaint.training.cli import cache_outputs_main, evaluate_main


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as address:
        yield address


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cache_outputs_and_evaluate_on_ray_match_the_embedded_run(cluster, prepared, tmp_path):
    engines = write_standins(tmp_path / "engines")
    roots = {}
    for how in ("here", "ray"):
        roots[how] = tmp_path / how
        shutil.copytree(prepared.root, roots[how], ignore=shutil.ignore_patterns("outputs"))
    args = ["--engines", str(engines), "--backend", "ort-cpu", "--no-progress", "--no-footprint-cache"]
    ray = ["--ray", "--ray-batch", "3"]
    assert cache_outputs_main([str(roots["here"]), *args]) == 0
    assert cache_outputs_main([str(roots["ray"]), *args, *ray]) == 0
    here, there = _files(roots["here"] / "outputs"), _files(roots["ray"] / "outputs")
    n = len(prepared.items) * len(prepared.mask_sets)
    assert len([p for p in here if p.suffix == ".png"]) == 2 * n  # lama and mat, every image and mask set
    assert here.keys() == there.keys()
    for path in here:
        assert here[path] == there[path], path  # outputs and source.json (weights, backend, precision, seed)
    for how, extra in (("here", []), ("ray", ray)):
        out = roots[how] / "eval"
        assert (
            evaluate_main(
                [str(roots[how]), *args, "--models", "lama,mat,ensemble", "--out", str(out), *extra]
            )
            == 0
        )
    a, b = (json.loads((roots[h] / "eval" / "report.json").read_text()) for h in ("here", "ray"))
    assert a["tables"] == b["tables"] and a["runs"] == b["runs"]
    assert a["runs"]["ensemble"]["done"] == n and a["runs"]["lama"]["skipped"] == n
    assert all(row["n"] == len(prepared.items) for t in a["tables"].values() for row in t.values())
    ens_here = _files(roots["here"] / "outputs" / "ensemble")
    assert ens_here and ens_here == _files(roots["ray"] / "outputs" / "ensemble")
