"""Listing files: the (image, mask, output) triples of a run too large for a folder scan.

CSV (a header row naming the columns) or Parquet (read with pyarrow, only when such a file is given), with
the columns ``image``, ``mask`` and ``output``; other columns are ignored. Relative paths are taken from the
listing's own folder. An empty ``mask`` cell marks an image without a mask (it fails alone, as an image
without a mask does in a folder run). A missing column or image/output cell, or two rows writing one output,
is an ``InputError`` naming the listing (and the row) before any work.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from trt_inpaint.errors import InputError

COLUMNS = ("image", "mask", "output")
CSV_SUFFIXES = {".csv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}

Triple = tuple[Path, Path | None, Path]


def read_listing(path: str | Path) -> list[Triple]:
    """The listing's rows as (image, mask or None, output) paths, in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputError("listing file not found", path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        rows = _csv_rows(path)
    elif suffix in PARQUET_SUFFIXES:
        rows = _parquet_rows(path)
    else:
        kinds = ", ".join(sorted(CSV_SUFFIXES | PARQUET_SUFFIXES))
        raise InputError(f"a listing must be a CSV or Parquet file ({kinds})", path)
    return _triples(path, rows)


def _csv_rows(path: Path) -> Iterable[dict]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            _check_columns(path, reader.fieldnames or [])
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read the listing: {e}", path) from e


def _parquet_rows(path: Path) -> Iterable[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            "Parquet listings need pyarrow (pip install pyarrow, or trt-inpaint[ray]); or give a CSV", path
        ) from None
    try:
        schema = pq.read_schema(path)
        _check_columns(path, schema.names)
        table = pq.read_table(path, columns=list(COLUMNS))
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid/ArrowIOError derive from these
        raise InputError(f"cannot read the listing: {e}", path) from e
    return table.to_pylist()


def _check_columns(path: Path, names: Iterable[str]) -> None:
    missing = [c for c in COLUMNS if c not in set(names)]
    if missing:
        raise InputError(
            f"the listing has no column(s) {', '.join(missing)} (needs {', '.join(COLUMNS)})", path
        )


def _triples(path: Path, rows: Iterable[dict]) -> list[Triple]:
    base = path.parent

    def resolve(value) -> Path | None:
        text = "" if value is None else str(value).strip()
        return None if not text else base / Path(text).expanduser()

    out: list[Triple] = []
    seen: dict[Path, int] = {}
    for n, row in enumerate(rows, start=1):
        image, mask, output = (resolve(row.get(c)) for c in COLUMNS)
        for name, value in (("image", image), ("output", output)):
            if value is None:
                raise InputError(f"row {n}: empty {name} cell", path)
        key = output.resolve()
        if key in seen:
            raise InputError(f"rows {seen[key]} and {n} write the same output {output}", path)
        seen[key] = n
        out.append((image, mask, output))
    if not out:
        raise InputError("the listing has no rows", path)
    return out
