"""manifest.json of an engines folder: what was built, from what, how, for which GPU; staleness checks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
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
    def from_dict(cls, d: dict) -> StageRecord:
        d = dict(d)
        d["artefacts"] = {k: Artefact(**v) for k, v in d.get("artefacts", {}).items()}
        return cls(**d)


@dataclass
class Manifest:
    stages: dict[str, StageRecord] = field(default_factory=dict)
    format: int = FORMAT
    tool: str = "trt-inpaint"
    created: str = ""
    random_init: bool = False
    warning: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["random_init"] = any(s.random_init for s in self.stages.values())
        d["warning"] = RANDOM_INIT_WARNING if d["random_init"] else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        d = dict(d)
        if d.get("format") != FORMAT:
            raise ValueError(f"manifest format {d.get('format')!r}, this tool reads {FORMAT}")
        d["stages"] = {k: StageRecord.from_dict(v) for k, v in d.get("stages", {}).items()}
        return cls(**d)


def read_manifest(out_dir: Path, missing_ok: bool = True) -> Manifest | None:
    """The manifest of ``out_dir``; None if absent and ``missing_ok``. A damaged one raises EngineError."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        if missing_ok:
            return None
        raise EngineError("no manifest here: run export-engines first", path)
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as e:
        raise EngineError(f"unreadable manifest: {e}", path) from e


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    """Write atomically (temp file, then rename)."""
    return atomic.write_text(Path(out_dir) / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=2) + "\n")
