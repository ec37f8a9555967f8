"""The engines/ folder as the runtime sees it: file paths from ``spec``, manifest facts from the exporter's
typed reader (``export.manifest``, which imports no torch).

The runtime relies on these manifest facts only, each optional (see ``StageFacts``): per stage, the
TensorRT module and version that built its engine, each file's recorded size, and where the weights came
from (random-init seed and size, or a checkpoint path) so the torch backend can rebuild the same stage.
A folder without a manifest has no facts; a damaged manifest is an EngineError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trt_inpaint.errors import EngineError
from trt_inpaint.export.manifest import Manifest, StageRecord, read_manifest
from trt_inpaint.export.spec import MANIFEST_NAME, STAGES, Precision, Stage, engine_filename, onnx_filename


def export_hint(folder: Path) -> str:
    """The export command for ``folder``, one weights flag per stage of the spec's table."""
    flags = " ".join(f"{row.weights_flag} {row.weights_metavar}" for row in STAGES.values())
    return f"build them with: export-engines --out {folder} {flags} (or --random-init for a smoke test)"


@dataclass(frozen=True)
class StageFacts:
    """What the manifest says about one stage (every field may be missing)."""

    trt_module: str | None = None  # "tensorrt" or "tensorrt_rtx"
    trt_version: str | None = None
    # TensorRT-RTX: the compute capabilities the engine was built for ("8.6", "12.x"); None: not recorded
    compute_capabilities: tuple[str, ...] | None = None
    random_init_seed: int | None = None
    tiny: bool = False
    checkpoints: dict[str, str] = field(default_factory=dict)
    record: StageRecord | None = None  # the stage's whole manifest record (None without one)


def _get(d: Any, *keys: str) -> Any:
    """The first of ``keys`` present in dict ``d`` (None if d is not a dict or none is there)."""
    if isinstance(d, dict):
        for k in keys:
            if k in d:
                return d[k]
    return None


class EngineDir:
    """Paths of the stage files in one engines folder and the facts of its manifest."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._parsed: tuple[tuple[int, ...] | None, Manifest | None] | None = None

    def onnx(self, stage: Stage, precision: Precision) -> Path:
        return self.folder / onnx_filename(stage, precision)

    def engine(self, stage: Stage, precision: Precision) -> Path:
        return self.folder / engine_filename(stage, precision)

    def manifest(self) -> Manifest | None:
        """The folder's manifest through the exporter's typed reader, parsed once (and again only when the
        file changes: a rebuild replaces it); None if absent; EngineError naming the file if damaged."""
        path = self.folder / MANIFEST_NAME
        try:
            st = path.stat()
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        except OSError as e:
            raise EngineError(f"cannot read the manifest ({e.strerror or e})", path) from e
        if self._parsed is None or self._parsed[0] != signature:
            self._parsed = (signature, None if signature is None else read_manifest(self.folder))
        return self._parsed[1]

    def stage_facts(self, stage: Stage) -> StageFacts:
        """Facts about ``stage`` from the manifest (``stages.<name>.source`` and
        ``stages.<name>.artefacts.engine.info.{builder, version, target.compute_capabilities}``); missing
        pieces stay None."""
        manifest = self.manifest()
        record = manifest.stages.get(stage.value) if manifest is not None else None
        if record is None:
            return StageFacts()
        source = record.source
        engine = record.artefacts.get("engine")
        info = engine.info if engine is not None else {}
        builder = _get(info, "builder")
        seed = _get(source, "seed") if _get(source, "random_init") else None
        path = _get(source, "path")
        ccs = _get(_get(info, "target"), "compute_capabilities")
        ccs = tuple(str(c) for c in ccs) if isinstance(ccs, list) and ccs else None
        return StageFacts(
            trt_module=str(builder).replace("-", "_") if builder else None,
            trt_version=str(_get(info, "version")) if _get(info, "version") else None,
            compute_capabilities=ccs,
            random_init_seed=int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None,
            tiny=bool(_get(source, "tiny")),
            checkpoints={"path": str(path)} if path else {},
            record=record,
        )

    def recorded_bytes(self, stage: Stage, filename: str) -> int | None:
        """The size the manifest recorded for ``filename`` of ``stage`` (None if not recorded)."""
        record = self.stage_facts(stage).record
        for art in record.artefacts.values() if record is not None else ():
            if art.file == filename:
                return art.bytes
        return None

    def require(self, paths: list[Path]) -> None:
        """EngineError naming the folder and the exact export command when files are missing."""
        if not self.folder.is_dir():
            raise EngineError(f"engines folder {self.folder} does not exist: {export_hint(self.folder)}")
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise EngineError(
                f"engines folder {self.folder} lacks {', '.join(missing)}: {export_hint(self.folder)}"
            )
