"""``trt-inpaint --images DIR --masks DIR|MASK -o DIR --ray [auto|ADDRESS]`` (or ``--list FILE --ray``).

The embedded run's parser, pairs, summary and exit codes (``runtime.cli``), with the stages on Ray Data.
``trt_inpaint.cli`` routes any command line with ``--ray`` here.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import redirect_stdout


def main(argv: list[str] | None = None) -> int:
    from trt_inpaint.distributed.cli_args import add_ray_args
    from trt_inpaint.runtime.cli import build_parser, guarded

    parser = build_parser()
    add_ray_args(parser)
    args = parser.parse_args(argv)
    return guarded(lambda: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from trt_inpaint.distributed.cli_args import ray_options_from_args
    from trt_inpaint.distributed.progress import FileBar
    from trt_inpaint.distributed.run import inpaint_files
    from trt_inpaint.runtime.api import stderr_log
    from trt_inpaint.runtime.cli import finish_run, pairs_from_args
    from trt_inpaint.runtime.cli_args import options_from_args

    ray_options = ray_options_from_args(args)
    if args.image is not None or args.mask is not None:
        parser.error("--ray runs folders and listings: --images DIR --masks DIR|MASK -o DIR, or --list FILE")
    pairs, folder = pairs_from_args(args, parser)
    quiet = args.json
    bar = FileBar(len(pairs), enabled=not args.no_progress and not quiet)
    # stdout is the --json summary's alone: Ray prints the cluster's messages to every driver's sys.stdout
    # (e.g. "(raylet) WARNING: 8 PYTHON worker processes have been started"); during the run they go to stderr
    try:
        with redirect_stdout(sys.stderr):
            run = inpaint_files(
                pairs,
                options_from_args(args),
                ray_options,
                overwrite=args.overwrite,
                progress=bar.update,
                log=None if quiet else stderr_log,
            )
    finally:
        bar.close()
    return finish_run(args, folder, run.report, run.stats)


if __name__ == "__main__":
    sys.exit(main())
