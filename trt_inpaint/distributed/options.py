"""``RayOptions``: how a run uses Ray (which cluster, how many actors, which layout, its bounds); the one
place their defaults are written. Frozen and light (no Ray import): the CLIs build it from flags."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from pathlib import Path

from trt_inpaint.errors import InputError
from trt_inpaint.runtime.units import parse_bytes

AUTO = "auto"


class Layout(str, enum.Enum):
    """``inpainter``: each actor holds an Inpainter (all stages, its own engine pool and memory budget) and
    runs each batch stage-major. ``staged``: one actor pool per stage, each actor a fraction of a GPU sized
    from the stage's footprint, so that stages scale apart."""

    INPAINTER = "inpainter"
    STAGED = "staged"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RayOptions:
    # "auto": join the cluster that RAY_ADDRESS or this machine's running one names, else start a local one;
    # else an address to join (host:port of the head node's GCS, or ray://host:10001)
    address: str = AUTO
    actors: int | None = (
        None  # inpainter: the pool's size; staged: the most per stage. None: one per GPU, or 1
    )
    batch: int = 4  # images per block handed to an actor (blocks stay small in the object store)
    layout: Layout | str = Layout.INPAINTER
    actor_cpus: float | None = (
        None  # CPUs an actor reserves; None: Ray Data's 1 (<= 0.5 can stall: ray#44687)
    )
    accelerator_type: str | None = (
        None  # pin actors to a GPU type, e.g. "A10G": the one the engines were built for
    )
    max_restarts: int = 3  # restarts of each actor (and retries of its batch) before the run stops
    timeout: float = 600.0  # seconds: the longest wait for actors to start, or for any step to make progress
    # a local cluster that the run starts itself (ignored when it joins one):
    object_store_memory: int | str | None = None  # bytes; None: Ray's default (30 % of RAM)
    temp_dir: Path | str | None = None  # Ray's session folder (logs, sockets); None: /tmp/ray
    spill_dir: Path | str | None = None  # where the object store spills; None: inside the session folder

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> InputError:
            return InputError(f"option {name}: {why}")

        try:
            object.__setattr__(self, "layout", Layout(self.layout))
        except ValueError:
            raise fail(
                "layout", f"{self.layout!r} is not one of {', '.join(m.value for m in Layout)}"
            ) from None
        try:
            object.__setattr__(self, "object_store_memory", parse_bytes(self.object_store_memory))
        except ValueError as e:
            raise fail("object_store_memory", str(e)) from None
        for name in ("temp_dir", "spill_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)).expanduser().absolute())
        if not str(self.address).strip():
            raise fail("address", "empty (give auto or host:port)")
        if self.actors is not None and self.actors < 1:
            raise fail("actors", f"must be >= 1, got {self.actors}")
        if self.batch < 1:
            raise fail("batch", f"must be >= 1, got {self.batch}")
        if self.actor_cpus is not None and self.actor_cpus <= 0:
            raise fail("actor_cpus", f"must be > 0, got {self.actor_cpus}")
        if self.max_restarts < 0:
            raise fail("max_restarts", f"must be >= 0, got {self.max_restarts}")
        if self.timeout <= 0:
            raise fail("timeout", f"must be > 0 seconds, got {self.timeout}")

    @property
    def joins(self) -> bool:
        """An explicit address: join that cluster (never start one)."""
        return self.address != AUTO

    @classmethod
    def default(cls, name: str):
        return next(f.default for f in fields(cls) if f.name == name)
