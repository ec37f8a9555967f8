"""LaMa-style mask generators: configured statistics, primitive bounds, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from trt_inpaint.errors import InputError
from trt_inpaint.training.data import read_mask, write_png
from trt_inpaint.training.masks import (
    MASK_SETS,
    Kind,
    draw_variant,
    generate_mask,
    mask_rng,
    pick_kind,
    rasterize,
    resolve_mask_sets,
    sample_boxes,
    sample_strokes,
)

REF = json.loads((Path(__file__).parents[1] / "fixtures" / "training" / "lama_mask_stats.json").read_text())[
    "sets"
]


@pytest.mark.parametrize("name", list(MASK_SETS))
def test_coverage_matches_lama_generators(name):
    """Mean coverage (before and after the 50 % filter) and the kept range match the original's statistics."""
    cfg = MASK_SETS[name]
    ref = REF[name]
    n = 160 if cfg.size == 256 else 80
    rng = np.random.default_rng(11)
    raw = np.array([draw_variant(rng, cfg, cfg.size, cfg.size).mean() for _ in range(2 * n)])
    kept = np.array([generate_mask(cfg, rng).mean() for _ in range(n)])
    tol_raw = 4 * ref["raw_std"] / math.sqrt(len(raw)) + 0.005
    tol = 4 * ref["std"] / math.sqrt(n) + 0.005
    assert abs(raw.mean() - ref["raw_mean"]) < tol_raw, (raw.mean(), ref["raw_mean"])
    assert abs(kept.mean() - ref["mean"]) < tol, (kept.mean(), ref["mean"])
    assert kept.max() <= cfg.max_area and kept.min() > 0
    assert abs(np.quantile(kept, 0.5) - ref["q50"]) < 0.08


@pytest.mark.parametrize("name", list(MASK_SETS))
def test_strokes_and_boxes_within_configured_bounds(name):
    cfg = MASK_SETS[name]
    s = cfg.strokes
    rng = np.random.default_rng(5)
    counts = set()
    for _ in range(60):
        lines = sample_strokes(rng, cfg.size, cfg.size, s)
        counts.add(len(lines))
        assert s.min_times <= len(lines) <= s.max_times + 1
        for segs in lines:
            assert 1 <= len(segs) <= 5
            for seg in segs:
                assert 5 <= seg.width < 5 + s.max_width
                length = math.dist(seg.start, seg.end)
                assert length < 10 + s.max_len + 2  # truncation and clipping only shorten
                assert all(0 <= v <= cfg.size for v in (*seg.start, *seg.end))
            for a, b in zip(segs, segs[1:], strict=False):
                assert a.end == b.start  # a polyline
    assert len(counts) > 1
    if cfg.boxes is None:
        return
    b = cfg.boxes
    lo, hi = b.size_range(cfg.size, cfg.size)
    for _ in range(60):
        boxes = sample_boxes(rng, cfg.size, cfg.size, b)
        assert b.min_times <= len(boxes) <= b.max_times
        for box in boxes:
            assert lo <= box.width <= hi and lo <= box.height <= hi <= b.max_size
            assert box.x >= b.margin and box.y >= b.margin
            assert box.x + box.width <= cfg.size - b.margin and box.y + box.height <= cfg.size - b.margin


def test_generator_mix_and_kinds():
    """irregular 1 : box 0.3; a box mask is a union of axis-aligned rectangles; thin sets: strokes only."""
    rng = np.random.default_rng(2)
    kinds = [pick_kind(rng, MASK_SETS["medium_256"]) for _ in range(4000)]
    assert abs(kinds.count(Kind.BOXES) / 4000 - 0.3 / 1.3) < 0.025
    assert {pick_kind(rng, MASK_SETS["thin_512"]) for _ in range(200)} == {Kind.STROKES}
    boxes = sample_boxes(rng, 256, 256, MASK_SETS["thick_256"].boxes)
    m = rasterize(256, 256, boxes=boxes)
    expected = np.zeros((256, 256), np.uint8)
    for b in boxes:
        expected[b.y : b.y + b.height, b.x : b.x + b.width] = 1
    assert np.array_equal(m, expected)


def test_deterministic_by_seed_and_key():
    cfg = MASK_SETS["thick_256"]
    a = generate_mask(cfg, mask_rng(3, "cat/img", cfg.name))
    b = generate_mask(cfg, mask_rng(3, "cat/img", cfg.name))
    c = generate_mask(cfg, mask_rng(4, "cat/img", cfg.name))
    d = generate_mask(cfg, mask_rng(3, "cat/other", cfg.name))
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_resize_keeps_coverage_and_png_roundtrip(tmp_path):
    cfg = MASK_SETS["thin_256"]
    m256 = generate_mask(cfg, mask_rng(0, "k", cfg.name))
    m64 = generate_mask(cfg, mask_rng(0, "k", cfg.name), size=64)
    assert m64.shape == (64, 64) and abs(m64.mean() - m256.mean()) < 0.05
    write_png(tmp_path / "m.png", m256 * np.uint8(255))
    back = read_mask(tmp_path / "m.png")
    assert back.dtype == np.float32 and np.array_equal(back, m256.astype(np.float32))


def test_resolve_names():
    assert [c.name for c in resolve_mask_sets("thick,medium,thin", 256)] == [
        "thick_256",
        "medium_256",
        "thin_256",
    ]
    assert [c.name for c in resolve_mask_sets("thin", 512)] == ["thin_512"]
    assert [c.name for c in resolve_mask_sets(["thick_512"], 256)] == ["thick_512"]
    with pytest.raises(InputError, match="unknown mask set"):
        resolve_mask_sets("huge", 256)
