"""prepare-data on tiny Places-style trees and flat folders (real image files in tmp)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from trt_inpaint.errors import InputError
from trt_inpaint.training.cli import prepare_data_main
from trt_inpaint.training.data import (
    PrepareOptions,
    load_index,
    prepare_data,
    read_mask,
    read_rgb,
    split_items,
)

SIZE = 32


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (5, 5), 2)


@pytest.fixture()
def places(tmp_path):
    """a/airfield (3 colour + 1 grey), a/apartment/indoor (nested: 2 colour + 1 RGBA), b/bedroom (1)."""
    rng = np.random.default_rng(0)
    src = tmp_path / "places"
    for cat, n in (("a/airfield", 3), ("a/apartment/indoor", 2), ("b/bedroom", 1)):
        (src / cat).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(src / cat / f"{i:08d}.jpg"), _photo(rng, 40 + 3 * i, 52))
    cv2.imwrite(str(src / "a/airfield/grey.jpg"), (rng.random((40, 40)) * 255).astype(np.uint8))
    rgba = np.dstack([_photo(rng, 36, 36), np.full((36, 36), 255, np.uint8)])
    cv2.imwrite(str(src / "a/apartment/indoor/alpha.png"), rgba)
    (src / "b/bedroom/notes.txt").write_text("not an image")
    return src


def test_places_tree(places, tmp_path):
    dst = tmp_path / "out"
    code = prepare_data_main(
        [
            str(places),
            str(dst),
            "--per-class",
            "10",
            "--size",
            str(SIZE),
            "--masks",
            "thick,thin",
            "--seed",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    idx = load_index(dst)
    assert idx.size == SIZE and idx.mask_sets == ["thick_256", "thin_256"]
    cats = sorted({i.category for i in idx.items})
    assert cats == ["a/airfield", "a/apartment/indoor", "b/bedroom"]
    assert len(idx.items) == 6  # grey and RGBA dropped, the text file ignored
    reasons = {d["source"]: d["reason"] for d in idx.dropped}
    assert set(reasons) == {"a/airfield/grey.jpg", "a/apartment/indoor/alpha.png"}
    assert all("3-channel" in r for r in reasons.values())
    for it in idx.items:
        img = read_rgb(idx.image_path(it))
        assert img.shape == (SIZE, SIZE, 3)
        assert it.key.startswith(it.category + "/")
        for s in idx.mask_sets:
            raw = cv2.imread(str(idx.mask_path(it, s)), cv2.IMREAD_UNCHANGED)
            assert raw.shape == (SIZE, SIZE) and set(np.unique(raw)) <= {0, 255}
            m = read_mask(idx.mask_path(it, s))
            assert set(np.unique(m)) <= {0.0, 1.0} and 0 < m.mean() <= 0.6


def test_per_class_limit_and_determinism(places, tmp_path):
    opts = PrepareOptions(per_class=2, size=SIZE, masks="medium", seed=5)
    a = prepare_data(places, tmp_path / "a", opts, progress=False)
    b = prepare_data(places, tmp_path / "b", opts, progress=False)
    c = prepare_data(
        places, tmp_path / "c", PrepareOptions(per_class=2, size=SIZE, masks="medium", seed=6), progress=False
    )
    counts = {}
    for it in a.items:
        counts[it.category] = counts.get(it.category, 0) + 1
    assert counts == {"a/airfield": 2, "a/apartment/indoor": 2, "b/bedroom": 1}
    assert [i.key for i in a.items] == [i.key for i in b.items]
    for ia, ib in zip(a.items, b.items, strict=True):
        assert (a.root / ia.image).read_bytes() == (b.root / ib.image).read_bytes()
        assert (a.root / ia.masks["medium_256"]).read_bytes() == (
            b.root / ib.masks["medium_256"]
        ).read_bytes()
    ja, jb = json.loads((a.root / "index.json").read_text()), json.loads((b.root / "index.json").read_text())
    assert ja["items"] == jb["items"]
    # another seed: other masks (and, with 3 airfield images for 2 places, possibly other picks)
    same_key = [(x, y) for x in a.items for y in c.items if x.key == y.key]
    assert same_key
    assert any(
        not np.array_equal(read_mask(a.mask_path(x, "medium_256")), read_mask(c.mask_path(y, "medium_256")))
        for x, y in same_key
    )


def test_flat_folder(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "flat"
    src.mkdir()
    for i in range(4):
        cv2.imwrite(str(src / f"img{i}.png"), _photo(rng, 30, 45))
    cv2.imwrite(str(src / "grey.png"), (rng.random((30, 30)) * 255).astype(np.uint8))
    idx = prepare_data(
        src, tmp_path / "out", PrepareOptions(per_class=3, size=SIZE, masks="thick_512"), progress=False
    )
    assert {i.category for i in idx.items} == {"."}
    assert len(idx.items) == 3 and all("/" not in i.key for i in idx.items)
    assert (tmp_path / "out" / "images" / f"{idx.items[0].key}.png").is_file()
    assert idx.mask_sets == ["thick_512"]


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        prepare_data(tmp_path / "missing", tmp_path / "o", PrepareOptions(), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        prepare_data(tmp_path / "empty", tmp_path / "o", PrepareOptions(), progress=False)
    grey = tmp_path / "grey"
    grey.mkdir()
    cv2.imwrite(str(grey / "g.png"), np.zeros((20, 20), np.uint8))
    assert prepare_data_main([str(grey), str(tmp_path / "o"), "--no-progress"]) == InputError.exit_code
    with pytest.raises(InputError, match="index.json"):
        load_index(tmp_path / "o")


def test_split_is_deterministic(places, tmp_path):
    idx = prepare_data(places, tmp_path / "o", PrepareOptions(size=SIZE, masks="thin"), progress=False)
    tr, va = split_items(idx.items, 0.34, seed=2)
    tr2, va2 = split_items(idx.items, 0.34, seed=2)
    assert [i.key for i in va] == [i.key for i in va2] and len(va) == 2 and len(tr) == 4
    assert not {i.key for i in tr} & {i.key for i in va}
