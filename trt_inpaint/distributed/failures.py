"""Ray's ways of stopping a run, said in one line as ``BackendUnavailable`` (exit code 5).

Ray reports a dead actor, a worker killed mid-task, a pool that never started or a stalled execution with
its own exception types (often one wrapped in another) and long multi-line texts; the CLI shows one line
that says what happened and which bound was reached.
"""

from __future__ import annotations

from trt_inpaint.distributed.options import RayOptions
from trt_inpaint.errors import BackendUnavailable


def ray_failures() -> tuple[type[BaseException], ...]:
    """The exception types a Ray Data run ends with when the cluster, not our code, failed."""
    from ray.data.exceptions import ExecutionTimeoutError, SystemException
    from ray.exceptions import RayError

    return (RayError, ExecutionTimeoutError, SystemException)


def _chain(e: BaseException):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def stopped(error: BaseException, ray_options: RayOptions) -> BackendUnavailable:
    from ray.data.exceptions import ExecutionTimeoutError
    from ray.exceptions import GetTimeoutError, RayActorError, WorkerCrashedError

    chain = list(_chain(error))
    t = f"{ray_options.timeout:g} s (--ray-timeout)"
    if any(isinstance(x, ExecutionTimeoutError) for x in chain):
        why = f"no step made progress for {t}"
    elif any(isinstance(x, GetTimeoutError) for x in chain):
        gpu = f" (a GPU of type {ray_options.accelerator_type})" if ray_options.accelerator_type else ""
        why = f"the actors did not start within {t}: the cluster lacks what they ask for{gpu}"
    elif any(isinstance(x, RayActorError) for x in chain):
        why = (
            f"an actor died after {ray_options.max_restarts} restart(s) (--ray-max-restarts): "
            "see the Ray logs of the node for why (out of memory, a crash in an engine, a lost node)"
        )
    elif any(isinstance(x, WorkerCrashedError) for x in chain):
        why = f"a worker died {ray_options.max_restarts + 1} time(s) running one batch (--ray-max-restarts)"
    else:
        text = str(error).strip()
        why = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
    return BackendUnavailable(f"the Ray run stopped: {why}")
