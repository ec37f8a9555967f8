"""Folder and listing runs on a Ray cluster (Ray Data), for inputs or GPUs that outgrow one process.

    from trt_inpaint.distributed import inpaint_files, RayOptions
    run = inpaint_files(triples, InpaintOptions(engines="/shared/engines"), RayOptions(address="auto"))
    run.report.results, run.stats

Read and prepare in CPU tasks (the runtime's ``prepare_pair``), the stages in a GPU actor pool (each actor an
Inpainter, or one pool per stage), finish and write in CPU tasks: the embedded run's steps, so the same
bytes. Ray is the ``ray`` extra and is imported only when a run starts; this package depends on the runtime,
never the other way round.
"""

from trt_inpaint.distributed.options import Layout, RayOptions


def __getattr__(name: str):
    if name in ("inpaint_files", "RayRun"):  # the run module (Ray, the runtime) only when asked for
        from trt_inpaint.distributed import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Layout", "RayOptions", "inpaint_files", "RayRun"]
