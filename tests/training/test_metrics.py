"""Metrics on known answers, and evaluate's tables on real files."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from trt_inpaint.errors import CheckpointError
from trt_inpaint.training.cli import evaluate_main
from trt_inpaint.training.data import read_rgb, write_png
from trt_inpaint.training.fid import FIDInceptionV3, frechet_distance, load_fid_inception
from trt_inpaint.training.metrics import load_lpips, psnr, ssim, to_tensor


def _image(seed=0, h=40, w=48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 200 + 20).astype(np.uint8)


def test_identical_images():
    a = _image()
    assert psnr(a, a.copy()) == math.inf
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


def test_uniform_offset_has_the_analytic_psnr():
    a = _image()
    for k in (1, 5, 20):
        b = a + np.uint8(k)  # no overflow: values <= 220 + 20
        assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / k**2), abs=1e-9)


def test_ssim_of_a_constant_offset_is_the_luminance_term():
    """Flat images c and c + k: sigma terms vanish, SSIM = (2 c (c+k) + C1) / (c^2 + (c+k)^2 + C1)."""
    c, k = 0.4, 0.1
    a = np.full((24, 24, 3), c)
    b = np.full((24, 24, 3), c + k)
    c1 = 0.01**2
    assert ssim(a, b) == pytest.approx((2 * c * (c + k) + c1) / (c * c + (c + k) ** 2 + c1), rel=1e-9)
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 0.05, a.shape), 0, 1)
    assert 0 < ssim(a, noisy) < 0.9


def _structured_images() -> dict[str, np.ndarray]:
    """Fixed 32x40 RGB uint8 images from formulas (no random generator): two textures and two smooth
    patterns, each pair differing in a known way."""
    y, x, c = np.meshgrid(np.arange(32), np.arange(40), np.arange(3), indexing="ij")
    a = ((37 * y + 11 * x + 71 * c + (x * y) % 29) % 256).astype(np.uint8)
    b = np.clip(a.astype(int) + (3 * x - 5 * y + 13 * c) % 17 - 8, 0, 255).astype(np.uint8)
    g = (128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0 + c)).round().astype(np.uint8)
    h = (g // 2 + 64).astype(np.uint8)
    return {"a": a, "b": b, "g": g, "h": h}


# scikit-image 0.26.0's structural_similarity on these images / 255 (gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False, data_range=1; RGB with channel_axis=2, grey = channel 0), computed once
SKIMAGE_SSIM = {
    ("a", "b"): (0.9973973010002345, 0.99739425461473),
    ("a", "g"): (0.01624107006517386, 0.011584404861056193),
    ("g", "h"): (0.8099754573334851, 0.8099794103186116),
    ("b", "h"): (0.01507787189907848, 0.012063177723653503),
}


@pytest.mark.parametrize("pair", list(SKIMAGE_SSIM), ids="-".join)
def test_ssim_matches_an_independent_implementation(pair):
    im = _structured_images()
    rgb, grey = SKIMAGE_SSIM[pair]
    a, b = (im[k] for k in pair)
    assert ssim(a, b) == pytest.approx(rgb, abs=1e-9)
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(grey, abs=1e-9)
    assert ssim(a / 255.0, b / 255.0) == pytest.approx(rgb, abs=1e-9)  # float input in [0, 1]


def _lpips_numpy(x: np.ndarray, y: np.ndarray, vgg: dict[str, np.ndarray], lins: list[np.ndarray]) -> float:
    """LPIPS v0.1 (VGG) written from its definition, in float64 numpy: inputs (H, W, 3) in [0, 1] ->
    2x - 1, minus shift, over scale (per channel); VGG16 convs (3x3, pad 1) + ReLU, 2x2 max pools; at
    relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 each feature unit-normalised over channels (eps 1e-10),
    squared difference, weighted by that layer's lin weights, summed over channels, averaged over space;
    summed over layers."""
    shift = np.array([-0.030, -0.088, -0.188])[:, None, None]
    scale = np.array([0.458, 0.448, 0.450])[:, None, None]
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    blocks = [2, 2, 3, 3, 3]  # convs per block; a tap at the end of each, a pool between blocks

    def features(img: np.ndarray) -> list[np.ndarray]:
        t = ((img.transpose(2, 0, 1) * 2 - 1) - shift) / scale
        taps, k = [], 0
        for n in blocks:
            if taps:
                c, h, w = t.shape
                t = t[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
            for _ in range(n):
                w_, b_ = vgg[f"features.{convs[k]}.weight"], vgg[f"features.{convs[k]}.bias"]
                p = np.pad(t, ((0, 0), (1, 1), (1, 1)))
                h, w = t.shape[1:]
                cols = np.stack([p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=1)
                t = np.maximum(
                    np.einsum("oik,ikhw->ohw", w_.reshape(*w_.shape[:2], 9), cols) + b_[:, None, None], 0
                )
                k += 1
            taps.append(t)
        return taps

    total = 0.0
    for fx, fy, lin in zip(features(x), features(y), lins, strict=True):
        ux = fx / (np.sqrt((fx**2).sum(axis=0, keepdims=True)) + 1e-10)
        uy = fy / (np.sqrt((fy**2).sum(axis=0, keepdims=True)) + 1e-10)
        total += float((((ux - uy) ** 2) * lin.reshape(-1, 1, 1)).sum(axis=0).mean())
    return total


def test_lpips_matches_an_independent_implementation(tmp_path, vgg16_file):
    """Made-up lin weights (positive, one pattern per layer) on the VGG16 weights file of the fixture: our
    LPIPS against the numpy one above, on three pairs of the structured images."""
    lins = [(0.5 + (np.arange(c) % 7) / 7.0) / c for c in (64, 128, 256, 512, 512)]
    torch.save(
        {
            f"lin{i}.model.1.weight": torch.tensor(w, dtype=torch.float32).view(1, -1, 1, 1)
            for i, w in enumerate(lins)
        },
        tmp_path / "lin.pth",
    )
    lp = load_lpips(vgg16_file, tmp_path / "lin.pth")
    vgg = {k: v.double().numpy() for k, v in torch.load(vgg16_file, weights_only=True).items()}
    im = _structured_images()
    pairs = [(im["a"], im["b"]), (im["g"], im["h"]), (im["a"], im["g"])]
    got = lp(torch.cat([to_tensor(p) for p, _ in pairs]), torch.cat([to_tensor(q) for _, q in pairs]))
    for k, (p, q) in enumerate(pairs):
        want = _lpips_numpy(p / 255.0, q / 255.0, vgg, [w.astype(np.float64) for w in lins])
        assert want > 1e-4  # the images differ: a real distance
        assert float(got[k]) == pytest.approx(want, rel=1e-4), k


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(x, x + 2.0) == pytest.approx(6 * 4.0, rel=1e-9)  # mean shift only
    # both exact routes agree, with more or fewer samples than dimensions
    y = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    assert frechet_distance(x, y, "samples") == pytest.approx(frechet_distance(x, y, "features"), rel=1e-8)
    few = rng.standard_normal((5, 40))
    ref = frechet_distance(few, few[::-1] * 1.5, "features")
    assert frechet_distance(few, few[::-1] * 1.5, "samples") == pytest.approx(ref, rel=1e-6)
    # same mean, covariance 4S: tr(S + 4S - 2 * 2S) = tr(S)
    assert frechet_distance(x, 2 * x - x.mean(0)) == pytest.approx(
        np.trace(np.cov(x, rowvar=False)), rel=1e-9
    )


def test_lpips_with_user_weights(tmp_path, vgg16_file):
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(lins, tmp_path / "vgg.pth")
    lp = load_lpips(vgg16_file, tmp_path / "vgg.pth")
    a, b = to_tensor(_image(1, 32, 32)), to_tensor(_image(2, 32, 32))
    d = lp(torch.cat([a, a]), torch.cat([a, b]))
    assert float(d[0]) == pytest.approx(0.0, abs=1e-7) and float(d[1]) > 0
    torch.save({"lin0.model.1.weight": torch.rand(1, 64, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="lin"):
        load_lpips(vgg16_file, tmp_path / "bad.pth")


def test_fid_inception_loads_pytorch_fid_layout(tmp_path):
    """Our InceptionV3 takes torchvision/pytorch-fid key names; the classifier is ignored."""
    sd = {k: v for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")}
    sd["fc.weight"] = torch.zeros(1008, 2048)
    assert len(sd) == 471  # 94 BasicConv2d x (conv + 4 BN tensors) + fc.weight
    torch.save(sd, tmp_path / "pt_inception.pth")
    model = load_fid_inception(tmp_path / "pt_inception.pth")
    assert sum(p.numel() for p in model.parameters()) == 21_785_568
    del sd["Mixed_7c.branch_pool.conv.weight"]
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="Mixed_7c"):
        load_fid_inception(tmp_path / "broken.pth")


def test_evaluate_tables(prepared, tmp_path, capsys):
    """Outputs equal to the ground truth: PSNR inf, SSIM 1; a +4 offset model: the analytic PSNR."""
    data = tmp_path / "data"
    shutil.copytree(prepared.root, data, ignore=shutil.ignore_patterns("outputs"))
    from trt_inpaint.training.data import load_index

    idx = load_index(data)
    for it in idx.items:
        gt = read_rgb(idx.image_path(it))
        for s in idx.mask_sets:
            write_png(idx.output_path("lama", it, s), gt)
            off = np.where(gt >= 4, gt.astype(int) - 4, gt.astype(int) + 4)  # |difference| 4 everywhere
            write_png(idx.output_path("mat", it, s), off.astype(np.uint8))
    code = evaluate_main(
        [str(data), "--no-run", "--models", "lama,mat,ensemble", "--out", str(tmp_path / "r")]
    )
    assert code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert set(report["tables"]) == set(idx.mask_sets)
    n = len(idx.items)
    for rows in report["tables"].values():
        assert rows["lama"]["n"] == n and rows["lama"]["psnr"] == "inf"  # strict JSON: inf as a string
        assert rows["lama"]["ssim"] == pytest.approx(1.0)
        assert rows["mat"]["psnr"] == pytest.approx(10 * math.log10(255**2 / 16), abs=1e-6)
        assert rows["mat"]["ssim"] < 1
        assert rows["ensemble"]["missing"] == n
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| LaMa | " in md and "inf" in md and "| MAT | " in md and "LPIPS not computed" in md
    assert "| model | images | PSNR (dB) ↑ | SSIM ↑ |" in capsys.readouterr().out


def test_evaluate_with_lpips_and_fid_weights(prepared, tmp_path, vgg16_file):
    """All four metrics from user-given weight files (seeded random here): a perfect model scores LPIPS 0
    and FID 0, a degraded one scores worse on both."""
    from trt_inpaint.models.init import deterministic_init_
    from trt_inpaint.training.data import load_index

    data = tmp_path / "data"
    shutil.copytree(prepared.root, data, ignore=shutil.ignore_patterns("outputs"))
    idx = load_index(data)
    for it in idx.items:
        gt = read_rgb(idx.image_path(it))
        write_png(idx.output_path("lama", it, "medium_256"), gt)
        write_png(idx.output_path("mat", it, "medium_256"), (gt // 2).astype(np.uint8))
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(lins, tmp_path / "lin.pth")
    inception = deterministic_init_(FIDInceptionV3(), seed=0)
    torch.save(inception.state_dict(), tmp_path / "inception.pth")
    weights = ["--vgg16", str(vgg16_file), "--lpips-lin", str(tmp_path / "lin.pth")]
    weights += ["--inception", str(tmp_path / "inception.pth")]
    args = [str(data), "--no-run", "--models", "lama,mat", "--masks", "medium", "--no-progress"]
    assert evaluate_main([*args, *weights, "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["not_computed"] == {}
    lama, mat = report["tables"]["medium_256"]["lama"], report["tables"]["medium_256"]["mat"]
    assert lama["lpips"] == pytest.approx(0.0, abs=1e-6) and mat["lpips"] > 1e-3
    assert abs(lama["fid"]) < 1e-6 * max(1.0, mat["fid"]) and mat["fid"] > 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "LPIPS ↓" in md and "FID ↓" in md and "not computed" not in md
