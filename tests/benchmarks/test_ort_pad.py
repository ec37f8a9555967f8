"""benchmarks/ort_pad.py: its one-node graphs in real ONNX Runtime sessions (outputs checked against numpy,
a wrong op caught), the shape it takes from big-LaMa, and the report. Timings are not judged, only their
bookkeeping."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.scripts import load_script
from trt_inpaint.models.ffc import FFCResnetBlock
from trt_inpaint.models.lama import lama_big

SIDES, THREADS = (32, 64), (1, 2)


@pytest.fixture(scope="module")
def pad():
    load_script("lama_scaling")
    return load_script("ort_pad")


def test_ffc_shape_is_big_lamas(pad):
    model = lama_big()
    block = next(m for m in model.modules() if isinstance(m, FFCResnetBlock))
    ffc = block.conv1.ffc
    channels = ffc.convl2l.in_channels + ffc.convg2l.in_channels
    assert pad.ffc_shape(512) == (channels, 512 // 2**model.n_downsampling)
    assert pad.ffc_shape(2048)[1] == 4 * pad.ffc_shape(512)[1]


def test_measure_and_report(pad, tmp_path):
    measured = pad.measure(16, SIDES, THREADS, rounds=2, runs=3)
    ms = measured["ms"]
    assert set(ms) == set(pad.CASES)
    for side in SIDES:  # float32 in and out
        assert measured["bytes"]["Pad, reflect"][str(side)] == 4 * 16 * (side * side + (side + 2) ** 2)
        assert measured["bytes"]["Add of 0 (a copy)"][str(side)] == 4 * 16 * 2 * side * side
    for per in ms.values():
        for side in SIDES:
            for n in THREADS:
                times = per[str(side)][str(n)]
                assert len(times) == 2 * 3 and min(times) > 0
    lama_scaling = load_script("lama_scaling")
    data = {"date": "now", "machine": lama_scaling.machine(), "sizes": [64, 128], "sides": list(SIDES)}
    data.update(channels=16, rounds=2, runs=3, **measured)
    lama_scaling.write_report(tmp_path, "ort-pad", data, pad.render)
    text = (tmp_path / "ort-pad.md").read_text()
    assert text == pad.render(json.loads((tmp_path / "ort-pad.json").read_text()))  # re-renders from its JSON
    assert "(1, 16, side, side)" in text and "2 rounds x 3 runs" in text
    for case in pad.CASES:
        rows = [r.split("|") for r in text.splitlines() if r.startswith(f"| {case} |")]
        assert [r[2].strip() for r in rows] == [str(n) for n in THREADS]
        for r in rows:
            assert float(r[3]) > 0 and float(r[5]) > 0 and float(r[7]) > 0


def test_a_wrong_op_is_caught(pad, monkeypatch):
    """The timed graph is checked: an edge pad in place of the reflect pad fails before any timing."""
    import numpy as np

    name = "Pad, reflect"
    monkeypatch.setitem(pad.CASES, name, ("Pad", {"mode": "edge"}, pad.CASES[name][2]))
    x = np.random.default_rng(0).random((1, 2, 5, 5), dtype=np.float32)
    with pytest.raises(AssertionError, match="not numpy's"):
        pad.bound(name, 1, x)
