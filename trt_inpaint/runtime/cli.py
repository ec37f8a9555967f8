"""``trt-inpaint IMG MASK [-o OUT]``, ``trt-inpaint --images DIR --masks DIR|FILE -o DIR`` and
``trt-inpaint --list FILE`` (a CSV or Parquet listing of image, mask, output).

Folder and listing runs resume: outputs already present are skipped (status "skipped") unless
``--overwrite``; single-image mode always writes.

Exit codes: 0 all written; 1 some files failed (folder mode); otherwise the code of the error
(``trt_inpaint.errors``): 2 bad input, 3 checkpoint, 4 engines, 5 backend unavailable, 6 memory budget.
An engine, backend or budget error raised while the stages run keeps its code in folder mode too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp"}
SOME_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    from trt_inpaint.runtime.cli_args import add_engine_args, add_item_args

    p = argparse.ArgumentParser(
        prog="trt-inpaint",
        description="Inpaint images with the LaMa + MAT ensemble, stage by stage within a memory budget.",
    )
    p.add_argument("image", nargs="?", type=Path, help="image file (single-image mode)")
    p.add_argument("mask", nargs="?", type=Path, help="mask file: hole where > 127 (single-image mode)")
    p.add_argument("-o", "--output", type=Path, help="output file (default IMG_inpainted.EXT) or folder")
    p.add_argument("--images", type=Path, help="folder of images (folder mode)")
    p.add_argument("--masks", type=Path, help="folder of masks matched by file stem, or one mask for all")
    p.add_argument(
        "--list", type=Path, metavar="FILE",
        help="CSV or Parquet listing with columns image, mask, output (paths relative to its folder)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="folder and listing runs: redo outputs that exist (default: skip)",
    )
    add_engine_args(p)
    add_item_args(p)
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def exit_code(results) -> int:
    """0 when nothing failed; else the code of the first failure that is not about one input file (an
    engine, backend or budget problem: 3-6), else 1 (some files failed)."""
    from trt_inpaint.errors import InputError

    errors = [r.error for r in results if r.error is not None]
    if not errors:
        return 0
    run_level = [e for e in errors if not isinstance(e, InputError)]
    return run_level[0].exit_code if run_level else SOME_FAILED


def _folder_pairs(images: Path, masks: Path, out: Path) -> list[tuple[Path, Path | None, Path]]:
    from trt_inpaint.errors import InputError

    if not images.is_dir():
        raise InputError("--images is not a folder", images)
    if not masks.exists():
        raise InputError("--masks not found", masks)
    files = sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder", images)
    if out.resolve() == images.resolve():
        raise InputError("the output folder is the images folder: outputs would overwrite inputs", out)
    out.mkdir(parents=True, exist_ok=True)
    if masks.is_file():
        return [(f, masks, out / f.name) for f in files]
    by_stem: dict[str, Path] = {}
    for m in sorted(masks.iterdir()):
        if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(m.stem, m)
    return [(f, by_stem.get(f.stem), out / f.name) for f in files]


def pairs_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[list, bool]:
    """The (image, mask, output) triples the flags ask for, and whether this is a folder (or listing) run."""
    if args.list is not None:
        if args.image or args.mask or args.images is not None or args.masks is not None or args.output:
            parser.error(
                "--list FILE takes no positional files, --images, --masks or -o (the listing names them)"
            )
        from trt_inpaint.runtime.listing import read_listing

        pairs = read_listing(args.list)
        for parent in sorted({out.parent for _, _, out in pairs}):
            parent.mkdir(parents=True, exist_ok=True)
        return pairs, True
    folder = args.images is not None or args.masks is not None
    if folder:
        if args.image or args.mask or args.images is None or args.masks is None or args.output is None:
            parser.error("folder mode takes --images DIR --masks DIR|FILE -o DIR (and no positional files)")
        return _folder_pairs(args.images, args.masks, args.output), True
    if args.image is None or args.mask is None:
        parser.error("give IMG MASK, or --images DIR --masks DIR -o DIR")
    out = args.output or args.image.with_name(f"{args.image.stem}_inpainted{args.image.suffix}")
    if out.is_dir():
        out = out / args.image.name
    return [(args.image, args.mask, out)], False


def progress_bar(total: int, enabled: bool):
    """(progress callback, bar to close) for tqdm on stderr; (None, None) when disabled."""
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", desc="read", file=sys.stderr)

    def progress(phase: str, k: int) -> None:
        if bar.desc != phase:
            bar.set_description(phase, refresh=False)
        bar.update(k)

    return progress, bar


def run_embedded(args: argparse.Namespace, pairs: list, folder: bool):
    """Run in this process: (Report, the Inpainter's stats)."""
    from trt_inpaint.runtime.api import Inpainter, stderr_log
    from trt_inpaint.runtime.cli_args import options_from_args

    quiet = args.json
    inp = Inpainter(options_from_args(args), log=None if quiet else stderr_log)
    steps = len(pairs) * (len(inp.stages) + 2)
    progress, bar = progress_bar(steps, folder and not args.no_progress and not quiet)
    try:
        report = inp.inpaint_files(pairs, progress)
    finally:
        if bar is not None:
            bar.close()
        inp.close()
    return report, inp.stats()


def finish_run(args: argparse.Namespace, folder: bool, report, stats: dict) -> int:
    """Print the summary (--json on stdout, else lines on stderr) and return the exit code."""
    from trt_inpaint.runtime.api import stderr_log

    quiet = args.json
    count = Counter(r.status for r in report.results)
    failed = report.failed
    if args.json:
        summary = {
            **stats,
            "images": len(report.results),
            "written": count["ok"],
            "unchanged": count["unchanged"],
            "skipped": count["skipped"],
            "failed": len(failed),
            "seconds": round(report.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()},
            "results": [r.as_dict() for r in report.results],
        }
        print(json.dumps(summary, indent=2))
    _print_failures(failed)
    if not quiet:
        for r in report.results:
            if r.note:
                stderr_log(f"{r.output}: {r.note}")
    if not folder:
        if not failed and not quiet:
            r = report.results[0]
            stderr_log(f"wrote {r.output} ({r.status}, {report.seconds:.1f} s)")
        return failed[0].exit_code if failed else 0
    if not quiet:
        from trt_inpaint.runtime.units import format_bytes

        skipped = f", {count['skipped']} skipped (output present)" if count["skipped"] else ""
        stderr_log(
            f"{count['ok']} written, {count['unchanged']} unchanged (empty mask){skipped}, "
            f"{len(failed)} failed of {len(report.results)} "
            f"in {report.seconds:.1f} s; loads {sum(stats['loads'].values())}, swaps {stats['swaps']}, "
            f"peak {format_bytes(stats['peak_pool_bytes'])} of budget {format_bytes(stats['budget_bytes'])}"
        )
    return exit_code(report.results)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from trt_inpaint.runtime.resume import run_missing

    pairs, folder = pairs_from_args(args, parser)
    stats: dict = {}

    def run(todo: list):
        report, run_stats = run_embedded(args, todo, folder)
        stats.update(run_stats)
        return report

    report = run_missing(pairs, run) if folder and not args.overwrite else run(pairs)
    return finish_run(args, folder, report, stats)


def _print_failures(failed) -> None:
    """One line per bad input file; an error that is not about the file itself (engine, backend, budget)
    once, with the number of files it stopped."""
    from trt_inpaint.errors import InputError

    shared: Counter = Counter()
    for r in failed:
        if isinstance(r.error, InputError):
            print(f"trt-inpaint: error: {r.error}", file=sys.stderr)
        else:
            shared[str(r.error)] += 1
    for text, n in shared.items():
        print(f"trt-inpaint: error: {text}" + (f" ({n} files)" if n > 1 else ""), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return guarded(lambda: _run(args, parser))


def guarded(run) -> int:
    """``run()``'s exit code; a typed error becomes one line on stderr and its code, Ctrl-C 130."""
    from trt_inpaint.errors import TrtInpaintError

    try:
        return run()
    except TrtInpaintError as e:
        print(f"trt-inpaint: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("trt-inpaint: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
