"""How many actors, in which pools, asking for what: from the layout, the cluster and the footprints.

``inpainter``: one pool of ``actors`` (default: one per GPU, or one on a CPU-only cluster), each actor a
whole GPU. ``staged``: one pool per stage of ``options.models``, growing from 1 to ``actors`` as its queue
asks; each actor asks for the GPU fraction its stage's footprint takes of the memory budget (the budget is
the memory one GPU gives the stages), rounded up to Ray's 1/10000 grain, so Ray never packs more footprints
on a GPU than the budget. Without a budget ("unlimited") the fractions split one GPU by footprint. The
footprints come from the pool of an Inpainter made on a worker (measured in an earlier run on that node when
its footprint cache has them, else estimated from the files), so the driver needs neither engines nor GPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trt_inpaint.distributed.cluster import Cluster
from trt_inpaint.distributed.options import Layout, RayOptions
from trt_inpaint.errors import BackendUnavailable, TrtInpaintError
from trt_inpaint.export.spec import Stage, pipeline_stages
from trt_inpaint.runtime.options import InpaintOptions

GRAIN = 10_000  # Ray's fractional resources are exact to 1e-4


@dataclass(frozen=True)
class ActorPool:
    stage: Stage | None  # None: every stage (an Inpainter each)
    min_size: int
    max_size: int
    num_gpus: float
    num_cpus: float | None  # None: Ray Data's default (1)

    @property
    def name(self) -> str:
        return "inpainter" if self.stage is None else self.stage.value


def uses_gpus(cluster: Cluster, ray_options: RayOptions) -> bool:
    """GPUs in the cluster, or a GPU type asked for (an autoscaling cluster may add such nodes later)."""
    return cluster.gpus > 0 or ray_options.accelerator_type is not None


def default_actors(cluster: Cluster, ray_options: RayOptions) -> int:
    if ray_options.actors is not None:
        return ray_options.actors
    return max(1, int(cluster.gpus))


def gpu_fractions(footprints: dict[Stage, int], budget: int | None) -> dict[Stage, float]:
    """Each stage's share of a GPU, in Ray's grain: footprint / budget rounded up (the shares on a GPU never
    add up to less memory than the stages take); without a budget, footprint / their sum rounded down (the
    stages fit one GPU together: the shares add up to at most 1)."""
    if budget is not None:
        grains = {s: math.ceil(GRAIN * fp / max(budget, 1)) for s, fp in footprints.items()}
    else:
        total = max(sum(footprints.values()), 1)
        grains = {s: max(1, GRAIN * fp // total) for s, fp in footprints.items()}
        if grains and sum(grains.values()) > GRAIN:  # tiny stages raised to one grain: the largest gives
            top = max(grains, key=grains.get)
            grains[top] -= sum(grains.values()) - GRAIN
    return {s: min(GRAIN, max(1, g)) / GRAIN for s, g in grains.items()}


def plan(
    cluster: Cluster, ray_options: RayOptions, options: InpaintOptions, footprints: dict[Stage, int] | None
) -> list[ActorPool]:
    n = default_actors(cluster, ray_options)
    gpu = uses_gpus(cluster, ray_options)
    cpus = ray_options.actor_cpus
    if ray_options.layout is Layout.INPAINTER:
        return [ActorPool(None, n, n, 1.0 if gpu else 0.0, cpus)]
    fractions = gpu_fractions(footprints or {}, options.memory_budget) if gpu else {}
    return [ActorPool(s, 1, n, fractions.get(s, 0.0), cpus) for s in pipeline_stages(options.models)]


def probe_footprints(
    ray, cluster: Cluster, ray_options: RayOptions, options: InpaintOptions
) -> dict[Stage, int]:
    """Footprints of ``options.models``' stages, from an Inpainter made (nothing loaded) on a worker of the
    kind that will run the stages. Bounded by ``ray_options.timeout``."""
    from ray.exceptions import GetTimeoutError

    remote = ray.remote(_footprints).options(
        num_cpus=1,
        num_gpus=1 / GRAIN if uses_gpus(cluster, ray_options) else 0,
        accelerator_type=ray_options.accelerator_type,
        max_retries=ray_options.max_restarts,
    )
    ref = remote.remote(options)
    try:
        found = ray.get(ref, timeout=ray_options.timeout)
    except GetTimeoutError as e:
        ray.cancel(ref, force=True)
        raise BackendUnavailable(
            f"no Ray worker could measure the stages' footprints within {ray_options.timeout:g} s "
            f"(--ray-timeout): the cluster lacks what it asks for{_wanted(ray_options)}"
        ) from e
    if isinstance(found, TrtInpaintError):
        raise found
    return {Stage(s): n for s, n in found.items()}


def _wanted(ray_options: RayOptions) -> str:
    return f" (a GPU of type {ray_options.accelerator_type})" if ray_options.accelerator_type else ""


def _footprints(options: InpaintOptions) -> dict[str, int] | TrtInpaintError:
    from trt_inpaint.runtime.api import Inpainter

    try:
        with Inpainter(options) as inp:
            return {s.value: inp.pool.footprint(s) for s in inp.stages}
    except TrtInpaintError as e:
        return e
