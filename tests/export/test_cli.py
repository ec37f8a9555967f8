"""export-engines command line: errors are one line with a non-zero exit; --random-init is loud; --check."""

from __future__ import annotations

import json

import cv2
import numpy as np

from trt_inpaint.errors import CheckpointError
from trt_inpaint.export import spec as S
from trt_inpaint.export.cli import main


def _one_line(text: str) -> str:
    """The error line: exactly one, and the last thing printed."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("export-engines: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], text
    return errors[0]


def test_bad_checkpoint_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "lama.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    code = main(["--lama", str(bad), "--out", str(tmp_path / "e"), "--builder", "none", "--stages", "lama"])
    assert code == CheckpointError.exit_code == 3
    line = _one_line(capsys.readouterr().err)
    assert str(bad) in line


def test_missing_weights_names_the_flag(tmp_path, capsys):
    code = main(["--out", str(tmp_path), "--builder", "none", "--stages", "lama_denoiser"])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert "--lama-denoiser" in line and "--random-init" in line


def test_check_without_manifest(tmp_path, capsys):
    assert main(["--check", "--out", str(tmp_path)]) == 4
    assert "manifest" in _one_line(capsys.readouterr().err)


def test_bad_calibration_folder(tmp_path, capsys):
    (tmp_path / "cal").mkdir()
    args = [
        "--random-init",
        "--out",
        str(tmp_path / "e"),
        "--builder",
        "none",
        "--calibration",
        str(tmp_path / "cal"),
    ]
    assert main(args) == 2
    assert "no image/mask pairs" in capsys.readouterr().err


def test_random_init_export_and_check(tmp_path, capsys):
    cal = tmp_path / "cal"
    cal.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(cal / "noise.png"), (rng.random((80, 96, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(cal / "noise_mask.png"), ((rng.random((80, 96)) < 0.3) * 255).astype(np.uint8))
    out = tmp_path / "engines"
    args = ["--random-init", "--stages", "final_denoiser", "--builder", "none", "--out", str(out)]
    args += ["--calibration", str(cal), "--calibration-size", "64", "--calibration-images", "7", "--check"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "SEEDED RANDOM WEIGHTS" in captured.err
    assert "final_denoiser" in captured.out and "PSNR dB" in captured.out and "fp16-sim" in captured.out
    manifest = json.loads((out / S.MANIFEST_NAME).read_text())
    assert manifest["random_init"] is True and manifest["warning"]
    rec = manifest["stages"]["final_denoiser"]
    assert rec["random_init"] and set(rec["artefacts"]) == {"onnx_fp32", "onnx_fp16"}
    assert (out / rec["artefacts"]["onnx_fp16"]["file"]).is_file()
    # the same command again reuses everything
    assert main(args[:-1]) == 0
    assert "reused" in capsys.readouterr().out
