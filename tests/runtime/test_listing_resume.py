"""``trt-inpaint --list FILE`` (CSV, Parquet) and resumed folder runs, in this process (the embedded run)."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trt_inpaint.runtime.cli import main
from trt_inpaint.samples import sample_pairs


@pytest.fixture
def folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for img, mask in sample_pairs()[:3]:
        shutil.copy(img, images / img.name)
        shutil.copy(mask, masks / mask.name)
    return images, masks


def _rows(images, masks):
    """Listing rows with paths relative to the listing (it lives in images' parent); outputs in a subfolder
    that the run must make."""
    return [
        {"image": f"images/{p.name}", "mask": f"masks/{p.stem}.png", "output": f"out/sub/{p.name}"}
        for p in sorted(images.iterdir())
    ]


def _write_csv(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["extra", "image", "mask", "output"])  # other columns are ignored
        w.writeheader()
        for r in rows:
            w.writerow({**r, "extra": "ignored"})
    return path


def _write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_csv_and_parquet_listings_give_the_folder_runs_bytes(engines, folder, tmp_path, capsys):
    images, masks = folder
    args = ["--engines", str(engines), "--models", "lama", "--json"]
    assert main(["--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "ref"), *args]) == 0
    capsys.readouterr()
    rows = _rows(images, masks)
    rows.append(
        {"image": rows[0]["image"], "mask": "", "output": "out/sub/no_mask.jpg"}
    )  # no mask: fails alone
    for kind, write in (("csv", _write_csv), ("parquet", _write_parquet)):
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        rc = main(["--list", str(write(tmp_path / f"l.{kind}", rows)), *args])
        s = _summary(capsys)
        assert (rc, s["written"], s["failed"]) == (1, 3, 1), kind
        assert [r["output"] for r in s["results"]] == [str(tmp_path / r["output"]) for r in rows], kind
        assert s["results"][-1]["error"] == f"{tmp_path / rows[0]['image']}: no mask found for this image"
        out = tmp_path / "out" / "sub"
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in images.iterdir()), kind
        for p in (tmp_path / "ref").iterdir():
            assert (out / p.name).read_bytes() == p.read_bytes(), (kind, p.name)


@pytest.mark.parametrize(
    "content, text",
    [("image,output\na.png,b.png\n", "no column(s) mask"),
     ("image,mask,output\na.png,m.png,o.png\nb.png,m.png,o.png\n", "rows 1 and 2 write the same output"),
     ("image,mask,output\n,m.png,o.png\n", "row 1: empty image cell"),
     ("image,mask,output\n", "no rows")],
)  # fmt: skip
def test_bad_listing_is_one_line_exit_2(engines, tmp_path, capsys, content, text):
    listing = tmp_path / "l.csv"
    listing.write_text(content)
    rc = main(["--list", str(listing), "--engines", str(engines)])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert rc == 2 and len(err) == 1 and text in err[0] and "l.csv" in err[0], err


def test_listing_of_unknown_kind_and_usage(engines, tmp_path, capsys):
    (tmp_path / "l.txt").write_text("x")
    assert main(["--list", str(tmp_path / "l.txt"), "--engines", str(engines)]) == 2
    assert "CSV or Parquet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--list", str(tmp_path / "l.txt"), "-o", str(tmp_path)])
    assert e.value.code == 2 and "the listing names them" in capsys.readouterr().err


def test_parquet_listing_without_pyarrow_says_so(tmp_path):
    _write_parquet(tmp_path / "l.parquet", [{"image": "a.png", "mask": "m.png", "output": "o.png"}])
    code = (
        "import importlib.abc, sys\n"
        "class NoArrow(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyarrow' or name.startswith('pyarrow.'):\n"
        "            raise ModuleNotFoundError('blocked by the test', name='pyarrow')\n"
        "sys.meta_path.insert(0, NoArrow())\n"
        "from trt_inpaint.runtime.cli import main\n"
        f"sys.exit(main(['--list', {str(tmp_path / 'l.parquet')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "l.parquet: Parquet listings need pyarrow" in proc.stderr and "Traceback" not in proc.stderr


def test_folder_run_resumes_and_overwrite_redoes(engines, folder, tmp_path, capsys):
    images, masks = folder
    out = tmp_path / "out"
    args = [
        "--images",
        str(images),
        "--masks",
        str(masks),
        "-o",
        str(out),
        "--engines",
        str(engines),
        "--json",
    ]
    args += ["--models", "lama"]
    assert main(args) == 0 and _summary(capsys)["written"] == 3
    names = sorted(p.name for p in out.iterdir())
    before = {n: (out / n).stat() for n in names}
    victim = out / names[1]
    kept = victim.read_bytes()
    victim.unlink()
    assert main(args) == 0
    s = _summary(capsys)
    assert (s["written"], s["skipped"], s["failed"]) == (1, 2, 0)
    assert [r["status"] for r in s["results"]] == ["skipped", "ok", "skipped"]
    assert victim.read_bytes() == kept, "the redone output differs from the first run's"
    for n in (names[0], names[2]):  # untouched: the same file (inode and time), not a rewrite
        st = (out / n).stat()
        assert (st.st_ino, st.st_mtime_ns) == (before[n].st_ino, before[n].st_mtime_ns), n
    assert main([*args, "--overwrite"]) == 0
    s = _summary(capsys)
    assert (s["written"], s["skipped"]) == (3, 0)
    assert all((out / n).stat().st_ino != before[n].st_ino for n in (names[0], names[2]))
    # the summary line says it too
    assert main([a for a in args if a != "--json"] + ["--no-progress"]) == 0
    assert "3 skipped (output present)" in capsys.readouterr().err


def test_single_image_mode_always_writes(engines, tmp_path):
    img, mask = sample_pairs()[0]
    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    assert main([str(img), str(mask), "-o", str(out), "--engines", str(engines), "--models", "lama"]) == 0
    assert out.read_bytes() != b"old" and os.path.getsize(out) > 1000
