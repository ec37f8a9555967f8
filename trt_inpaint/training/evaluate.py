"""evaluate: one table per mask set, one row per model (LaMa alone, MAT alone, the ensemble).

Outputs come from ``outputs/<model>/<set>/`` (cache-outputs fills lama and mat; missing ones are run
here through the runtime, stage-major, unless running is off). Every metric compares the model's output
with the prepared ground-truth image over the whole image. Results go to ``report.json`` and
``report.md`` in the output folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trt_inpaint import atomic
from trt_inpaint.errors import InputError
from trt_inpaint.export.spec import Pipeline
from trt_inpaint.training.cache import RunOptions, run_outputs
from trt_inpaint.training.data import Index, read_rgb
from trt_inpaint.training.metrics import psnr, ssim

MODEL_TITLES = {"lama": "LaMa", "mat": "MAT", "ensemble": "Ensemble"}
METRICS = (("psnr", "PSNR (dB) ↑"), ("ssim", "SSIM ↑"), ("lpips", "LPIPS ↓"), ("fid", "FID ↓"))


@dataclass(frozen=True)
class EvalOptions:
    out_dir: Path
    models: tuple[Pipeline, ...] = (Pipeline.LAMA, Pipeline.MAT, Pipeline.ENSEMBLE)
    mask_sets: tuple[str, ...] | None = None  # None: every prepared set
    run: RunOptions | None = None  # None: score existing outputs only
    vgg16: Path | None = None
    lpips_lin: Path | None = None
    inception: Path | None = None
    batch: int = 16
    progress: bool = True


@dataclass
class Scores:
    n: int = 0
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)
    fid: float | None = None

    def summary(self) -> dict:
        def mean(v: list[float]) -> float | None:
            return None if not v else (math.inf if any(math.isinf(x) for x in v) else float(np.mean(v)))

        return {
            "n": self.n,
            "psnr": mean(self.psnr),
            "ssim": mean(self.ssim),
            "lpips": mean(self.lpips),
            "fid": self.fid,
        }


class Scorer:
    """PSNR and SSIM always; LPIPS and FID when their weights were loaded."""

    def __init__(self, lpips=None, fid_features=None, batch: int = 16, device: str = "cpu"):
        self.device = device
        self.lpips = None if lpips is None else lpips.to(device)
        self.fid_features = None if fid_features is None else fid_features.to(device)
        self.batch = batch
        self._real: dict[str, np.ndarray] = {}  # ground-truth FID features by ``real_key``

    def score(
        self, pairs: Sequence[tuple[np.ndarray, np.ndarray]] | Callable, real_key: str | None = None
    ) -> Scores:
        """``pairs``: (output, ground truth) uint8 arrays, or a zero-argument callable yielding them.

        ``real_key`` names the ground-truth sequence: FID features of the real images are computed once
        per key and reused (every model and mask set shares the same ground truth).
        """
        import torch

        from trt_inpaint.training.metrics import to_tensor

        s = Scores()
        have_real = real_key is not None and real_key in self._real
        real_f, fake_f = [], []
        buf: list[tuple[np.ndarray, np.ndarray]] = []

        def flush() -> None:
            if not buf:
                return
            x = torch.cat([to_tensor(o) for o, _ in buf]).to(self.device)
            y = torch.cat([to_tensor(g) for _, g in buf]).to(self.device)
            if self.lpips is not None:
                s.lpips.extend(float(v) for v in self.lpips(x, y))
            if self.fid_features is not None:
                fake_f.append(self.fid_features(x).double().cpu().numpy())
                if not have_real:
                    real_f.append(self.fid_features(y).double().cpu().numpy())
            buf.clear()

        for out, gt in pairs() if callable(pairs) else pairs:
            if out.shape != gt.shape:
                raise InputError(f"output {out.shape} and ground truth {gt.shape} differ in size")
            s.n += 1
            s.psnr.append(psnr(out, gt))
            s.ssim.append(ssim(out, gt))
            if self.lpips is not None or self.fid_features is not None:
                buf.append((out, gt))
                if len(buf) >= self.batch:
                    flush()
        flush()
        if self.fid_features is not None and s.n >= 2:
            from trt_inpaint.training.fid import frechet_distance

            real = self._real[real_key] if have_real else np.concatenate(real_f)
            if real_key is not None:
                self._real[real_key] = real
            s.fid = frechet_distance(real, np.concatenate(fake_f))
        return s


def _load_scorer(opts: EvalOptions, log: Callable[[str], None]) -> tuple[Scorer, dict[str, str]]:
    off: dict[str, str] = {}
    lpips = fid = None
    if opts.vgg16 and opts.lpips_lin:
        from trt_inpaint.training.metrics import load_lpips

        lpips = load_lpips(opts.vgg16, opts.lpips_lin)
    else:
        off["lpips"] = "needs --vgg16 (torchvision vgg16 .pth) and --lpips-lin (lpips v0.1 vgg.pth)"
    if opts.inception:
        from trt_inpaint.training.fid import load_fid_inception

        fid = load_fid_inception(opts.inception)
    else:
        off["fid"] = "needs --inception (pytorch-fid pt_inception-2015-12-05 .pth)"
    for k, why in off.items():
        log(f"{k.upper()} not computed: {why}")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Scorer(lpips, fid, opts.batch, device), off


def evaluate(index: Index, opts: EvalOptions, log: Callable[[str], None] = print) -> dict:
    from tqdm import tqdm

    sets = list(opts.mask_sets or index.mask_sets)
    unknown = [s for s in sets if s not in index.mask_sets]
    if unknown:
        raise InputError(f"mask sets {unknown} not prepared here (have {index.mask_sets})", index.root)
    runs = {}
    if opts.run is not None:
        for m in opts.models:  # one model at a time over the whole set, engines released in between
            runs[m.value] = run_outputs(index, m, sets, opts.run, log).__dict__
    scorer, off = _load_scorer(opts, log)
    tables: dict[str, dict[str, dict]] = {}
    for s in sets:
        tables[s] = {}
        for m in opts.models:
            paths = [(index.output_path(m.value, it, s), index.image_path(it)) for it in index.items]
            missing = [o for o, _ in paths if not o.is_file()]
            if missing:
                tables[s][m.value] = {"n": 0, "missing": len(missing), "first_missing": str(missing[0])}
                log(f"{s} / {m.value}: {len(missing)} outputs missing (first {missing[0]}); row left empty")
                continue

            def gen(paths=paths, label=f"{s} {m.value}"):
                for o, g in tqdm(paths, disable=not opts.progress, desc=label, unit="img"):
                    yield read_rgb(o), read_rgb(g)

            tables[s][m.value] = scorer.score(gen, real_key="ground truth").summary()
    report = {
        "data": str(index.root),
        "images": len(index.items),
        "mask_sets": sets,
        "models": [m.value for m in opts.models],
        "not_computed": off,
        "runs": runs,
        "tables": tables,
    }
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_strict(report), indent=1, default=str, allow_nan=False)
    atomic.write_text(out / "report.json", text)
    atomic.write_text(out / "report.md", markdown(report))
    return report


def _strict(x):
    """Strict JSON: infinite values (PSNR of identical images) become the string "inf"."""
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_strict(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    return x


def _fmt(key: str, v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.2f}" if key in ("psnr", "fid") else f"{v:.4f}"


def markdown(report: dict) -> str:
    shown = [(k, t) for k, t in METRICS if k not in report["not_computed"]]
    lines = [f"# Evaluation of {report['data']} ({report['images']} images)", ""]
    for s, rows in report["tables"].items():
        lines += [
            f"## {s}",
            "",
            "| model | images | " + " | ".join(t for _, t in shown) + " |",
            "|---|---:|" + "---:|" * len(shown),
        ]
        for m, r in rows.items():
            if "missing" in r:
                lines.append(
                    f"| {MODEL_TITLES.get(m, m)} | 0 | " + " | ".join("missing" for _ in shown) + " |"
                )
            else:
                lines.append(
                    f"| {MODEL_TITLES.get(m, m)} | {r['n']} | "
                    + " | ".join(_fmt(k, r[k]) for k, _ in shown)
                    + " |"
                )
        lines.append("")
    for k, why in report["not_computed"].items():
        lines.append(f"- {k.upper()} not computed: {why}")
    return "\n".join(lines).rstrip() + "\n"
