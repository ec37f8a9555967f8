"""The ``--ray`` flags shared by trt-inpaint, cache-outputs and evaluate (light: no Ray import here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from trt_inpaint.distributed.options import AUTO, Layout, RayOptions


def add_ray_args(p: argparse.ArgumentParser) -> None:
    d = RayOptions.default
    g = p.add_argument_group("Ray (pip install 'trt-inpaint[ray]')")
    g.add_argument(
        "--ray", nargs="?", const=AUTO, metavar="auto|ADDRESS",
        help="run on Ray Data: auto joins the cluster RAY_ADDRESS or this machine runs, else starts a local "
        "one; ADDRESS (host:port) joins that cluster",
    )  # fmt: skip
    g.add_argument(
        "--ray-actors", type=int, help="inpainter layout: actors; staged: most per stage (default: 1 per GPU)"
    )
    g.add_argument("--ray-batch", type=int, default=d("batch"), help="images per batch (default %(default)s)")
    g.add_argument(
        "--ray-layout", default=d("layout").value, choices=[m.value for m in Layout],
        help="inpainter: each actor runs every stage; staged: one actor pool per stage, GPU fractions from "
        "footprints (default %(default)s)",
    )  # fmt: skip
    g.add_argument("--ray-actor-cpus", type=float, help="CPUs each actor reserves (default 1)")
    g.add_argument(
        "--ray-accelerator-type", metavar="TYPE", help="run the stages on this GPU type only (e.g. A10G)"
    )
    g.add_argument(
        "--ray-max-restarts", type=int, default=d("max_restarts"),
        help="restarts per actor and retries per batch before the run stops (default %(default)s)",
    )  # fmt: skip
    g.add_argument(
        "--ray-timeout", type=float, default=d("timeout"),
        help="seconds for actors to start, and for any step to make progress (default %(default)s)",
    )  # fmt: skip
    g.add_argument(
        "--ray-object-store", metavar="BYTES", help="a local cluster's object store (default: Ray's)"
    )
    g.add_argument("--ray-temp-dir", type=Path, help="a local cluster's session folder (default /tmp/ray)")
    g.add_argument(
        "--ray-spill-dir",
        type=Path,
        help="where a local cluster spills objects (default: its session folder)",
    )


def ray_options_from_args(args: argparse.Namespace) -> RayOptions | None:
    """None without --ray."""
    if getattr(args, "ray", None) is None:
        return None
    return RayOptions(
        address=args.ray,
        actors=args.ray_actors,
        batch=args.ray_batch,
        layout=args.ray_layout,
        actor_cpus=args.ray_actor_cpus,
        accelerator_type=args.ray_accelerator_type,
        max_restarts=args.ray_max_restarts,
        timeout=args.ray_timeout,
        object_store_memory=args.ray_object_store,
        temp_dir=args.ray_temp_dir,
        spill_dir=args.ray_spill_dir,
    )
