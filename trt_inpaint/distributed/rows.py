"""What travels between the steps of a cluster run, and the two CPU steps (prepare, finish).

Each dataset row is one input file: an int column ``k`` (its place in the run) and a binary column ``row``,
a pickled ``Row`` (the paths, the ``WorkItem`` with its arrays, the status, a typed error). Pickled bytes
keep every field as it is (16-bit pixels, alpha, the file's bytes for JPEG splicing, typed errors) through
Arrow blocks, which would otherwise coerce or reject them. Batches stay a few images, so blocks stay small.

The CPU steps are the runtime's own: ``prepare_pair`` (decode once, plan, working tensors) and
``finish.write`` (composite, encode, write atomically). A bad file becomes a failed row with its one-line
error here: an error is data, never an exception, so nothing retries it.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field

import numpy as np

from trt_inpaint.errors import TrtInpaintError
from trt_inpaint.runtime.options import InpaintOptions
from trt_inpaint.runtime.workitem import WorkItem

PENDING = "pending"  # on its way; the finish step gives "ok", "unchanged" or "failed"


@dataclass
class Row:
    k: int
    image: str
    mask: str | None
    output: str
    status: str = PENDING  # then "skipped" (output present), "failed", "ok" or "unchanged" (empty mask)
    item: WorkItem | None = None
    error: TrtInpaintError | None = None
    note: str | None = None
    carried: dict[str, np.ndarray] = field(default_factory=dict)  # staged layout: intermediates by source
    stage_seconds: dict[str, float] = field(default_factory=dict)
    workers: list[tuple[str, dict]] = field(
        default_factory=list
    )  # (actor id, its stats) on a batch's last row
    fatal: TrtInpaintError | None = (
        None  # the actor could not start (engines, backend, budget): the run stops
    )

    def fail(self, error: TrtInpaintError) -> None:
        self.status, self.error, self.item, self.carried = "failed", error, None, {}


def input_rows(pairs) -> list[dict]:
    """The dataset's source rows: plain strings (no mask: "")."""
    return [
        {"k": k, "image": str(i), "mask": "" if m is None else str(m), "output": str(o)}
        for k, (i, m, o) in enumerate(pairs)
    ]


def pack(rows: list[Row]) -> dict[str, np.ndarray]:
    data = np.empty(len(rows), dtype=object)
    data[:] = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in rows]
    return {"k": np.array([r.k for r in rows], dtype=np.int64), "row": data}


# what a pickled Row may name besides the project's own classes: numpy arrays, dtypes and scalars, and paths
_NUMPY_CORE = ("numpy._core.numeric", "numpy._core.multiarray", "numpy.core.numeric", "numpy.core.multiarray")
_ALLOWED = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    *((m, n) for m in _NUMPY_CORE for n in ("_frombuffer", "_reconstruct", "scalar")),
    *(("pathlib", n) for n in ("PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath")),
    *(("builtins", n) for n in ("set", "frozenset", "complex", "bytearray", "slice")),
}  # fmt: skip


class _RowUnpickler(pickle.Unpickler):
    """Rows are pickled by this run's own steps, never read from a user's file; still, unpickling resolves
    only the classes of this package and the few globals above, so bytes from anywhere else in the cluster
    cannot call arbitrary functions."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith("trt_inpaint."):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"a run's row names {module}.{name}, which rows never hold")


def unpack(batch: dict[str, np.ndarray]) -> list[Row]:
    return [_RowUnpickler(io.BytesIO(b)).load() for b in batch["row"]]


def prepare_rows(
    batch: dict[str, np.ndarray], options: InpaintOptions, overwrite: bool
) -> dict[str, np.ndarray]:
    """CPU step 1: skip outputs present (unless ``overwrite``), else read and prepare each file."""
    from trt_inpaint.runtime.prepare import prepare_pair
    from trt_inpaint.runtime.resume import output_present

    rows = []
    for k, image, mask, output in zip(
        batch["k"], batch["image"], batch["mask"], batch["output"], strict=True
    ):
        r = Row(int(k), str(image), str(mask) or None, str(output))
        if not overwrite and output_present(r.output):
            r.status = "skipped"
        else:
            try:
                r.item = prepare_pair(r.image, r.mask, r.output, options)
            except TrtInpaintError as e:
                r.fail(e)
        rows.append(r)
    return pack(rows)


def finish_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CPU step 3: write each run (or unchanged) item atomically; the rows go on without their arrays."""
    from trt_inpaint.runtime.finish import write

    rows = unpack(batch)
    for r in rows:
        if r.item is not None and r.fatal is None:
            r.stage_seconds = dict(r.item.stage_seconds)
            try:
                if r.item.error is not None:
                    raise r.item.error
                r.note = write(r.item, r.output).note
                r.status = "ok" if r.item.needs_run else "unchanged"
            except TrtInpaintError as e:
                r.error, r.status = e, "failed"
        r.item, r.carried = None, {}
    return pack(rows)
