"""Resumable folder and listing runs: an output already on disk is not made again unless overwriting.

Outputs are written atomically (``trt_inpaint.atomic``), so an output that exists is complete: a run that
stopped, even one killed, resumes by running it again. The embedded run (``runtime.cli``) and the cluster
run (``trt_inpaint.distributed``) both decide with ``output_present``; skipped files are reported with the
status "skipped".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from trt_inpaint.runtime.api import FileResult, Report


def output_present(output: str | Path) -> bool:
    return Path(output).is_file()


def skipped_result(image, mask, output) -> FileResult:
    return FileResult(Path(image), None if mask is None else Path(mask), Path(output), "skipped")


def run_missing(pairs: Sequence[tuple], run: Callable[[list[tuple]], Report]) -> Report:
    """``run`` on the pairs whose output is missing; the report covers every pair, in order, the others
    as skipped."""
    skipped = {k: skipped_result(*p) for k, p in enumerate(pairs) if output_present(p[2])}
    report = run([p for k, p in enumerate(pairs) if k not in skipped])
    ran = iter(report.results)
    report.results = [skipped[k] if k in skipped else next(ran) for k in range(len(pairs))]
    return report
