"""The engines/ folder as the runtime sees it: file paths from ``spec`` and a defensive manifest reader.

The runtime relies on these manifest facts only, each optional (see ``StageFacts``): per stage, the
TensorRT module and version that built its engine, each file's recorded size, and where the weights came
from (random-init seed and size, or a checkpoint path) so the torch backend can rebuild the same stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trt_inpaint.errors import EngineError
from trt_inpaint.export.spec import MANIFEST_NAME, Precision, Stage, engine_filename, onnx_filename

EXPORT_COMMAND = (
    "export-engines --out {dir} --lama CKPT --mat CKPT --lama-denoiser W --combiner W --final-denoiser W"
)


def export_hint(folder: Path) -> str:
    return f"build them with: {EXPORT_COMMAND.format(dir=folder)} (or --random-init for a smoke test)"


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
    raw: dict[str, Any] = field(default_factory=dict)


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

    def onnx(self, stage: Stage, precision: Precision) -> Path:
        return self.folder / onnx_filename(stage, precision)

    def engine(self, stage: Stage, precision: Precision) -> Path:
        return self.folder / engine_filename(stage, precision)

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest, {} if absent; EngineError if present but unreadable."""
        path = self.folder / MANIFEST_NAME
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise EngineError(f"manifest is not readable JSON ({e})", path) from e
        return data if isinstance(data, dict) else {}

    def stage_facts(self, stage: Stage) -> StageFacts:
        """Facts about ``stage`` from the exporter's manifest (format 1: ``stages.<name>.source`` and
        ``stages.<name>.artefacts.engine.info.{builder, version, target.compute_capabilities}``); missing
        pieces stay None."""
        stages = _get(self.manifest(), "stages")
        entry = stages.get(stage.value) if isinstance(stages, dict) else None
        entry = entry if isinstance(entry, dict) else {}
        source = _get(entry, "source") or {}
        engine = _get(_get(entry, "artefacts"), "engine") or {}
        info = _get(engine, "info") or {}
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
            raw=entry,
        )

    def recorded_bytes(self, stage: Stage, filename: str) -> int | None:
        """The size the manifest recorded for ``filename`` of ``stage`` (None if not recorded)."""
        for art in (_get(self.stage_facts(stage).raw, "artefacts") or {}).values():
            if _get(art, "file") == filename and isinstance(_get(art, "bytes"), int):
                return art["bytes"]
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
