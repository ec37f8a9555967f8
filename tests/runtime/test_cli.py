"""The trt-inpaint command line on real files with ONNX Runtime CPU stand-in stages."""

import json
import shutil

import cv2
import numpy as np
import pytest

from tests.standins import stage_record, write_records
from trt_inpaint.export.spec import Stage
from trt_inpaint.runtime.cli import main
from trt_inpaint.samples import sample_pairs


@pytest.fixture
def pair(tmp_path):
    img, mask = sample_pairs()[0]
    shutil.copy(img, tmp_path / "photo.jpg")
    shutil.copy(mask, tmp_path / "photo_mask.png")
    return tmp_path / "photo.jpg", tmp_path / "photo_mask.png"


def test_single_image_writes_same_format_and_json(engines, pair, tmp_path, capsys):
    img, mask = pair
    out = tmp_path / "result.png"  # lossless, so the untouched pixels can be compared exactly
    args = ["--engines", str(engines), "--models", "lama", "--backend", "ort-cpu"]
    assert main([str(img), str(mask), "-o", str(out), "--json", *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "ort-cpu" and summary["written"] == 1 and summary["loads"] == {"lama": 1}
    src = cv2.imread(str(img), cv2.IMREAD_UNCHANGED)
    res = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
    assert np.array_equal(res[~hole], src[~hole]) and not np.array_equal(res[hole], src[hole])
    # default output name: next to the input, same format
    assert main([str(img), str(mask), *args]) == 0
    assert cv2.imread(str(tmp_path / "photo_inpainted.jpg")) is not None
    assert "backend ort-cpu" in capsys.readouterr().err


def test_folder_mode_skips_bad_files_and_reports(engines, tmp_path, capsys):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    for img, mask in sample_pairs()[:3]:
        shutil.copy(img, images / img.name)
        shutil.copy(mask, masks / mask.name)
    (images / "broken.png").write_bytes(b"not a png")
    shutil.copy(sample_pairs()[0][1], masks / "broken.png")
    shutil.copy(sample_pairs()[0][0], images / "orphan.jpg")  # no mask named orphan.*
    rc = main(["--images", str(images), "--masks", str(masks), "-o", str(out), "--engines", str(engines)])
    err = capsys.readouterr().err
    assert rc == 1, "exit code must say that some files failed"
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p, _ in sample_pairs()[:3]), "bad files left output behind"
    assert "broken.png: image is not an image" in err and "orphan.jpg: no mask found" in err
    assert "3 written" in err and "2 failed" in err and "read" in err  # summary and progress bar
    rc = main(["--images", str(images), "--masks", str(masks), "-o", str(out), "--engines", str(engines),
               "--json", "--overwrite"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert rc == 1 and summary["failed"] == 2 and summary["written"] == 3
    assert summary["loads"] == {s: 1 for s in ["lama", "lama_denoiser", "mat", "combiner", "final_denoiser"]}


def test_one_mask_for_all_and_empty_mask_copies_input(engines, tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    for img, _ in sample_pairs()[:2]:
        shutil.copy(img, images / img.name)
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.zeros((4, 4), np.uint8))
    rc = main(["--images", str(images), "--masks", str(empty), "-o", str(out), "--engines", str(engines),
               "--resize-mask", "--no-progress"])  # fmt: skip
    assert rc == 0
    for img, _ in sample_pairs()[:2]:
        assert (out / img.name).read_bytes() == img.read_bytes(), "empty mask must leave the input unchanged"


@pytest.mark.parametrize(
    "make, code, text",
    [("missing_image", 2, "image not found"), ("empty_image", 2, "empty file"),
     ("mask_size", 2, "use --resize-mask"), ("no_engines", 4, "export-engines --out"),
     ("tensorrt_here", 5, "backend tensorrt cannot run")],
)  # fmt: skip
def test_errors_are_one_line_nonzero_and_leave_no_output(engines, pair, tmp_path, capsys, make, code, text):
    img, mask = pair
    out = tmp_path / "out.jpg"
    eng = engines
    extra = []
    if make == "missing_image":
        img = tmp_path / "nope.jpg"
    elif make == "empty_image":
        img = tmp_path / "empty.jpg"
        img.write_bytes(b"")
    elif make == "mask_size":
        cv2.imwrite(str(mask), np.full((10, 10), 255, np.uint8))
    elif make == "no_engines":
        eng = tmp_path / "engines"
    elif make == "tensorrt_here":
        extra = ["--backend", "tensorrt"]
    rc = main([str(img), str(mask), "-o", str(out), "--engines", str(eng), *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if line.startswith("trt-inpaint: error:")]
    assert rc == code
    assert len(err) == 1 and text in err[0] and "Traceback" not in "".join(lines), lines
    assert not out.exists() and not list(tmp_path.glob(".out.jpg*")), "an output file was left behind"


def test_stage_over_budget_exits_before_work(engines, pair, tmp_path, capsys):
    img, mask = pair
    rc = main(
        [
            str(img),
            str(mask),
            "-o",
            str(tmp_path / "o.jpg"),
            "--engines",
            str(engines),
            "--memory-budget",
            "1KiB",
        ]
    )
    assert rc == 6 and "memory budget" in capsys.readouterr().err and not (tmp_path / "o.jpg").exists()


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["only_one_file.png"])
    assert e.value.code == 2 and "IMG MASK" in capsys.readouterr().err


def _corrupt_copy(engines, tmp_path, stage="lama"):
    bad = tmp_path / "bad-engines"
    shutil.copytree(engines, bad)
    (bad / f"{stage}.fp32.onnx").write_bytes(b"not a protobuf model")
    return bad


def test_engine_error_while_a_stage_runs_exits_4_single_and_folder(engines, pair, tmp_path, capsys):
    """A stage that fails to load once the run has started keeps its type: exit 4, not 2 or 1, and the
    engine file named once."""
    img, mask = pair
    bad = _corrupt_copy(engines, tmp_path)
    out = tmp_path / "o.png"
    rc = main([str(img), str(mask), "-o", str(out), "--engines", str(bad), "--models", "lama"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert rc == 4 and len(err) == 1 and err[0].count("lama.fp32.onnx") == 1, err
    assert not out.exists()
    images, out_dir = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    for p, _ in sample_pairs()[:2]:
        shutil.copy(p, images / p.name)
    rc = main(["--images", str(images), "--masks", str(mask), "-o", str(out_dir), "--engines", str(bad),
               "--models", "lama", "--resize-mask", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert rc == 4 and summary["failed"] == 2
    assert {r["error_type"] for r in summary["results"]} == {"EngineError"}
    lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "(2 files)" in lines[0], "one engine error, said once with its count"
    assert not list(out_dir.iterdir())


def test_folder_with_only_bad_inputs_exits_1(engines, tmp_path, capsys):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    (images / "a.png").write_bytes(b"not a png")
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((8, 8), 255, np.uint8))
    rc = main(["--images", str(images), "--masks", str(mask), "-o", str(out), "--engines", str(engines)])
    assert rc == 1 and "a.png: image is not an image" in capsys.readouterr().err


def test_checkpoint_error_exits_3(engines, pair, tmp_path, capsys):
    """The torch backend loads the checkpoint the manifest names: a damaged one is a CheckpointError (3)."""
    img, mask = pair
    eng = tmp_path / "ckpt-engines"
    shutil.copytree(engines, eng)
    ckpt = tmp_path / "lama.safetensors"
    ckpt.write_bytes(b"\x00" * 64)
    write_records(eng, stage_record(Stage.LAMA, source={"path": str(ckpt)}))
    out = tmp_path / "o.png"
    rc = main([str(img), str(mask), "-o", str(out), "--engines", str(eng), "--backend", "torch",
               "--models", "lama", "--no-footprint-cache"])  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert rc == 3 and len(err) == 1 and "lama.safetensors" in err[0], err
    assert not out.exists()


def test_flag_defaults_are_the_options_defaults():
    """One home for every default: the CLI's flags take them from InpaintOptions."""
    from trt_inpaint.runtime.cli import build_parser
    from trt_inpaint.runtime.cli_args import options_from_args
    from trt_inpaint.runtime.options import InpaintOptions

    args = build_parser().parse_args(["a.png", "m.png", "--no-footprint-cache"])
    assert options_from_args(args) == InpaintOptions()
    backend = next(a for a in build_parser()._actions if a.dest == "backend")
    from trt_inpaint.runtime.backends.base import Backend

    assert backend.choices == [b.value for b in Backend]


def test_sixteen_bit_and_rgba_files_end_to_end(engines, tmp_path):
    """Through the CLI and real files: a 16-bit RGB PNG stays 16-bit with a 16-bit hole, an RGBA PNG keeps
    its alpha, and every pixel outside the mask is the input's."""
    img, mask = sample_pairs()[0]
    bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    deep = bgr.astype(np.uint16) * 257 + np.arange(bgr.shape[1], dtype=np.uint16)[None, :, None] % 200
    cv2.imwrite(str(images / "deep.png"), deep)
    alpha = np.tile(np.linspace(0, 255, bgr.shape[1], dtype=np.uint8), (bgr.shape[0], 1))[..., None]
    cv2.imwrite(str(images / "rgba.png"), np.concatenate([bgr, alpha], axis=2))
    rc = main(["--images", str(images), "--masks", str(mask), "-o", str(out), "--engines", str(engines),
               "--no-progress"])  # fmt: skip
    assert rc == 0
    hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
    for name in ("deep.png", "rgba.png"):
        src = cv2.imread(str(images / name), cv2.IMREAD_UNCHANGED)
        res = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert res.dtype == src.dtype and res.shape == src.shape, name
        assert np.array_equal(res[~hole], src[~hole]), name
        assert (res[hole][:, :3] != src[hole][:, :3]).any(axis=1).mean() > 0.5, name
    res = cv2.imread(str(out / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert (res[hole] % 257 != 0).mean() > 0.9, "the hole was computed in 8 bits"
    res = cv2.imread(str(out / "rgba.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(res[..., 3], alpha[..., 0]), "alpha changed"


def test_jpeg_in_jpeg_out_keeps_untouched_blocks(engines, tmp_path):
    """A JPEG photo through the CLI: outside the touched MCUs and one MCU around them (4:2:0 chroma) the
    output decodes bit for bit as the input; inside the hole it changed."""
    from tests.runtime.test_jpeg_splice import _decode, _zone

    img, mask = sample_pairs()[0]
    assert img.suffix == ".jpg"
    out = tmp_path / "out.jpg"
    assert main([str(img), str(mask), "-o", str(out), "--engines", str(engines), "--models", "lama"]) == 0
    src, res = _decode(img.read_bytes()), _decode(out.read_bytes())
    hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
    outside = ~_zone(hole, (16, 16), 1)
    assert outside.mean() > 0.3 and np.array_equal(res[outside], src[outside])
    assert (res[hole] != src[hole]).any(axis=-1).mean() > 0.5
