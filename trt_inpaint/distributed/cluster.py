"""Start or join the Ray cluster a run uses.

``auto`` joins the cluster ``RAY_ADDRESS`` names (never starting another when that fails), else one running
on this machine (``ray start``), else starts a local one (nothing to set up; it stops with the run). An
explicit address joins that cluster. A process that is
already connected (``ray.init`` called by the caller) is used as it is and left connected, so that several
runs (cache-outputs: LaMa, then MAT) share one cluster.

Token authentication (Ray >= 2.59): a local cluster that Ray starts makes a token (``~/.ray/auth_token``)
and turns it on. Joining by address turns it on only when asked (``RAY_AUTH_MODE=token``); without that a
join to such a cluster waits and fails with a bare ``ConnectionError``. So when a token is at hand
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) and ``RAY_AUTH_MODE`` is unset, the
join turns token mode on; a cluster that wants a token and gets none is a one-line error saying where to
put it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from trt_inpaint.distributed.options import AUTO, Layout, RayOptions
from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.export.spec import STAGES


@dataclass(frozen=True)
class Cluster:
    address: str
    started: bool  # a local cluster this run started (and stops)
    gpus: float
    cpus: float
    accelerator_types: tuple[str, ...]  # the GPU types its nodes name (Ray's accelerator_type:<T> resources)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BackendUnavailable(
            "Ray is not installed: pip install 'trt-inpaint[ray]' (ray[data] 2.60)"
        ) from None
    return ray


@contextmanager
def session(options: RayOptions, log: Callable[[str], None]) -> Iterator[Cluster]:
    """Connected to a cluster for the duration (left as it was found when the caller is connected)."""
    ray = import_ray()
    if ray.is_initialized():
        yield describe(ray, started=False)
        return
    started = _connect(ray, options, log)
    try:
        cluster = describe(ray, started)
        log(
            f"Ray: {'started a local cluster' if started else 'joined the cluster at ' + cluster.address} "
            f"({cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs)"
        )
        yield cluster
    finally:
        ray.shutdown()


@contextmanager
def maybe_session(options: RayOptions | None, log: Callable[[str], None]) -> Iterator[None]:
    """``session`` around several runs (cache-outputs: LaMa, then MAT) that share one cluster; nothing
    without Ray options."""
    if options is None:
        yield
        return
    with session(options, log):
        yield


def local_cpus(options: RayOptions) -> int:
    """Logical CPUs a local cluster declares: at least what the actors reserve (staged: a pool per stage)
    plus a prepare and a finish task. Ray counts them; the OS schedules the processes."""
    pools = len(STAGES) if options.layout is Layout.STAGED else 1
    wanted = pools * (options.actor_cpus or 1) * (options.actors or 1) + 2
    return max(os.cpu_count() or 1, math.ceil(wanted))


def describe(ray, started: bool) -> Cluster:
    res = ray.cluster_resources()
    types = tuple(sorted(k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")))
    address = ray.get_runtime_context().gcs_address
    return Cluster(address, started, float(res.get("GPU", 0)), float(res.get("CPU", 0)), types)


_QUIET = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}


def _connect(ray, options: RayOptions, log: Callable[[str], None]) -> bool:
    """Join or start; True when a local cluster was started."""
    from ray.exceptions import AuthenticationError

    address = options.address if options.joins else os.environ.get("RAY_ADDRESS", "").strip()
    if address:  # --ray ADDRESS, or auto with RAY_ADDRESS set: join that one, never start another
        _token_mode_for_join()
        _join(ray, address)
        return False
    try:
        ray.init(address=AUTO, **_QUIET)  # a cluster running on this machine (`ray start`)
        return False
    except ConnectionError:
        pass  # none: start one
    except AuthenticationError as e:
        raise _wants_token("running on this machine") from e
    local = {
        "num_cpus": local_cpus(options),
        "object_store_memory": options.object_store_memory,
    }
    if options.temp_dir is not None:
        local["_temp_dir"] = str(options.temp_dir)
    if options.spill_dir is not None:
        local["object_spilling_directory"] = str(options.spill_dir)
    try:
        ray.init(address="local", **_QUIET, **local)
    except (RuntimeError, ValueError, OSError) as e:
        raise BackendUnavailable(f"cannot start a local Ray cluster: {_first_line(e)}") from e
    return True


def _join(ray, address: str) -> None:
    from ray.exceptions import AuthenticationError

    try:
        ray.init(address=address, **_QUIET)
    except AuthenticationError as e:
        raise _wants_token(f"at {address}") from e
    except (ConnectionError, RuntimeError, ValueError) as e:
        hint = ""
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            hint = (
                " (a cluster with token authentication, Ray's default since 2.59, needs RAY_AUTH_TOKEN here)"
            )
        raise BackendUnavailable(f"cannot join the Ray cluster at {address}: {_first_line(e)}{hint}") from e


def _wants_token(where: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"the Ray cluster {where} wants its token: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the one "
        "`ray get-auth-token` prints on its head node"
    )


def _token_mode_for_join() -> None:
    """What Ray does itself when it finds a local cluster: token mode on when a token is at hand and the
    mode is not set (Ray 2.60's own helper; it keeps RAY_AUTH_MODE as set when it is)."""
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
