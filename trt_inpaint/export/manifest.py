"""manifest.json of an engines folder: what was built, from what, how, for which GPU; staleness checks.

The one reader and writer of the file (the exporter, the runtime's ``EngineDir``, the benchmark and the
training cache all go through ``read_manifest``). Imports no torch, onnx or TensorRT: the runtime reads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from trt_inpaint import atomic
from trt_inpaint.errors import EngineError
from trt_inpaint.export.spec import MANIFEST_NAME

FORMAT = 1
RANDOM_INIT_WARNING = (
    "RANDOM WEIGHTS: at least one stage was built from seeded random weights (--random-init); its output is "
    "noise, fit only for smoke tests and benchmarks"
)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def key_of(obj: object) -> str:
    """A short stable hash of a JSON-able description of an artefact's inputs and options."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Artefact:
    """One file of a stage (fp32 ONNX, fp16 ONNX or engine)."""

    file: str
    sha256: str
    bytes: int
    key: str  # hash of everything it was made from; a different key means stale
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: object, where: str) -> Artefact:
        return cls(**_fields(cls, d, where))

    @classmethod
    def of(cls, path: Path, key: str, seconds: float = 0.0, info: dict | None = None) -> Artefact:
        path = Path(path)
        return cls(path.name, sha256_file(path), path.stat().st_size, key, round(seconds, 2), info or {})

    def is_current(self, out_dir: Path, key: str) -> bool:
        """Same key, file present with the recorded size and sha256."""
        path = Path(out_dir) / self.file
        if self.key != key or not path.is_file() or path.stat().st_size != self.bytes:
            return False
        return sha256_file(path) == self.sha256


@dataclass
class StageRecord:
    stage: str
    precision: str
    source: dict  # {"path", "sha256"} or {"random_init": True, "seed", "tiny"}
    random_init: bool
    inputs: list[dict]
    outputs: list[dict]
    profile: dict  # input -> [min, opt, max] shapes
    artefacts: dict[str, Artefact] = field(default_factory=dict)  # "onnx_fp32", "onnx_fp16", "engine"
    status: str = "built"

    @property
    def runtime_file(self) -> str | None:
        """The engine if built, else the ONNX of the stage's precision."""
        for k in ("engine", f"onnx_{self.precision}"):
            if k in self.artefacts:
                return self.artefacts[k].file
        return None

    @classmethod
    def from_dict(cls, d: object, where: str) -> StageRecord:
        d = _fields(cls, d, where)
        arts = d.get("artefacts", {})
        d["artefacts"] = {k: Artefact.from_dict(v, f"{where}.artefacts.{k}") for k, v in arts.items()}
        return cls(**d)


@dataclass
class Manifest:
    stages: dict[str, StageRecord] = field(default_factory=dict)
    format: int = FORMAT
    tool: str = "trt-inpaint"
    created: str = ""
    random_init: bool = False
    warning: str | None = None

    @property
    def uses_random_init(self) -> bool:
        """Whether any stage was built from seeded random weights."""
        return any(s.random_init for s in self.stages.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["random_init"] = self.uses_random_init
        d["warning"] = RANDOM_INIT_WARNING if d["random_init"] else None
        return d

    @classmethod
    def from_dict(cls, d: object) -> Manifest:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"manifest format {found!r}, this tool reads {FORMAT}")
        d = _fields(cls, d, "manifest")
        d["stages"] = {k: StageRecord.from_dict(v, f"stages.{k}") for k, v in d.get("stages", {}).items()}
        return cls(**d)


# JSON types of the field annotations above (bool is not accepted as an int, an int is a float)
_JSON = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "dict": dict,
    "list[dict]": list,
    "str | None": (str, type(None)),
    "dict[str, Artefact]": dict,
    "dict[str, StageRecord]": dict,
}


def _fields(cls: type, d: object, where: str) -> dict:
    """``d`` checked against the dataclass ``cls``: an object with only its fields, every field without a
    default present, each of its JSON type. Returns the fields given (a copy); ValueError naming the field
    otherwise."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} is a {type(d).__name__}, not an object")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{where} has unknown field {unknown[0]!r}")
    out = {}
    for name, f in known.items():
        if name not in d:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{where} lacks {name!r}")
            continue
        want, value = _JSON[f.type], d[name]
        if not isinstance(value, want) or (isinstance(value, bool) and want in (int, (int, float))):
            raise ValueError(f"{where}.{name} is {value!r:.40}, not of type {f.type}")
        out[name] = value
    return out


def read_manifest(out_dir: Path, missing_ok: bool = True) -> Manifest | None:
    """The manifest of ``out_dir``; None if absent and ``missing_ok``. A damaged one (not JSON, another
    format, a missing, unknown or mistyped field) raises EngineError naming the file."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        if missing_ok:
            return None
        raise EngineError("no manifest here: run export-engines first", path)
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise EngineError(f"unreadable manifest: {e}", path) from e


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    """Write atomically (temp file, then rename)."""
    return atomic.write_text(Path(out_dir) / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=2) + "\n")
