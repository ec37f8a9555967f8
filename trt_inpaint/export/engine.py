"""One engine builder for the ``tensorrt`` and ``tensorrt_rtx`` modules (same API, both strongly typed:
the precision comes from the ONNX, there is no FP16 flag)."""

from __future__ import annotations

import enum
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from trt_inpaint import atomic
from trt_inpaint.errors import BackendUnavailable, EngineError

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)


class RtxTarget(str, enum.Enum):
    """A GPU architecture a TensorRT-RTX engine is compiled for (no Hopper / data-centre parts)."""

    SM75 = "sm75"  # Turing: makes engines ~16x larger (MAT fp16: 2.7 GB instead of 172 MB)
    SM86 = "sm86"  # Ampere (RTX 30)
    SM89 = "sm89"  # Ada (RTX 40)
    SM120 = "sm120"  # Blackwell (RTX 50)

    def __str__(self) -> str:
        return self.value

    @property
    def trt_name(self) -> str:
        """The ``ComputeCapability`` member name in tensorrt_rtx."""
        return self.value.upper()

    @property
    def cc(self) -> str:
        """The compute capability as the manifest writes it: "8.6", or "12.x" for any Blackwell 12.*."""
        return "12.x" if self is RtxTarget.SM120 else f"{self.value[2:-1]}.{self.value[-1]}"


RtxTargets = tuple[RtxTarget, ...]
DEFAULT_RTX_TARGETS: RtxTargets = (RtxTarget.SM86, RtxTarget.SM89, RtxTarget.SM120)


def parse_rtx_targets(text: str) -> RtxTargets:
    """``"sm86,sm89"`` -> (SM86, SM89), in the canonical order, no duplicates; ValueError naming the valid
    values for anything else."""
    valid = ", ".join(t.value for t in RtxTarget)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in {t.value for t in RtxTarget}]
    if bad or not names:
        raise ValueError(f"unknown TensorRT-RTX target {', '.join(bad) or repr(text)} (valid: {valid})")
    return tuple(t for t in RtxTarget if t.value in names)


def rtx_note(targets: RtxTargets) -> str:
    return (
        f"TensorRT-RTX engine for compute capabilities {', '.join(t.cc for t in targets)} (of 7.5 Turing, "
        "8.6 Ampere, 8.9 Ada, 12.x Blackwell); Hopper (H100/H200, CC 9.0) is not supported by TensorRT-RTX"
    )


RTX_NOTE = rtx_note(DEFAULT_RTX_TARGETS)


class Builder(str, enum.Enum):
    AUTO = "auto"
    TENSORRT = "tensorrt"
    TENSORRT_RTX = "tensorrt-rtx"
    NONE = "none"

    def __str__(self) -> str:
        return self.value

    @property
    def module_name(self) -> str:
        return {Builder.TENSORRT: "tensorrt", Builder.TENSORRT_RTX: "tensorrt_rtx"}[self]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except Exception:  # ImportError, or a broken install raising OSError on its libraries
        return False


def resolve(builder: Builder) -> Builder:
    """AUTO -> TENSORRT if ``tensorrt`` imports, else TENSORRT_RTX if ``tensorrt_rtx`` does, else NONE.
    An explicit builder that does not import raises BackendUnavailable."""
    builder = Builder(builder)
    if builder is Builder.AUTO:
        for b in (Builder.TENSORRT, Builder.TENSORRT_RTX):
            if _importable(b.module_name):
                return b
        return Builder.NONE
    if builder is not Builder.NONE and not _importable(builder.module_name):
        raise BackendUnavailable(
            f"--builder {builder}: the module {builder.module_name} does not import here "
            f"(pip install {'tensorrt' if builder is Builder.TENSORRT else 'tensorrt-rtx-cu13'})"
        )
    return builder


def load_module(builder: Builder) -> ModuleType:
    return importlib.import_module(Builder(builder).module_name)


@dataclass
class EngineBuild:
    """What built an engine, for which GPUs, and how long it took (stored in the manifest)."""

    builder: str
    version: str
    target: dict = field(default_factory=dict)
    seconds: float = 0.0
    timing_cache: str | None = None


def target_of(builder: Builder, rtx_targets: RtxTargets = DEFAULT_RTX_TARGETS, dropped: str = "") -> dict:
    if builder is Builder.TENSORRT_RTX:
        out = {
            "compute_capabilities": [t.cc for t in rtx_targets],
            "hopper_supported": False,
            "note": rtx_note(rtx_targets),
        }
        if dropped:
            out["turing_dropped"] = f"Turing (7.5) left out: {dropped}"
        return out
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
            cc = torch.cuda.get_device_capability(0)
            return {
                "gpu": gpu,
                "compute_capabilities": [f"{cc[0]}.{cc[1]}"],
                "note": "runs on this GPU model only",
            }
    except Exception:
        pass
    return {"gpu": gpu, "note": "TensorRT engines run only on the GPU model they were built on"}


class _Logger:
    """A TensorRT logger that keeps errors for the exception message."""

    def __init__(self, trt: ModuleType):
        self.errors: list[str] = []

        class L(trt.ILogger):
            def __init__(inner) -> None:
                trt.ILogger.__init__(inner)

            def log(inner, severity, msg) -> None:
                if severity <= trt.ILogger.Severity.ERROR:
                    self.errors.append(str(msg))
                elif severity <= trt.ILogger.Severity.WARNING and os.environ.get("TRT_INPAINT_VERBOSE"):
                    print(f"[{trt.__name__}] {msg}", file=sys.stderr)

        self.logger = L()


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    profile: Profile,
    builder: Builder,
    timing_cache: Path | None = None,
    rtx_targets: RtxTargets = DEFAULT_RTX_TARGETS,
) -> EngineBuild:
    """Parse ``onnx_path``, build a strongly typed engine with one optimization profile and write it to
    ``engine_path`` (atomically). ``timing_cache`` is read if present and written back (full TensorRT;
    TensorRT-RTX has no timing cache: its timing-cache calls are no-ops). ``rtx_targets``: the GPU
    architectures of a TensorRT-RTX engine (ignored by full TensorRT, which builds for the GPU it runs on);
    Turing (SM75) is dropped, and recorded as dropped, when it cannot build the graph."""
    builder = resolve(builder)
    if builder is Builder.NONE:
        raise BackendUnavailable("no engine builder (neither tensorrt nor tensorrt_rtx imports)")
    trt = load_module(builder)
    log = _Logger(trt)
    t0 = time.perf_counter()
    b = trt.Builder(log.logger)
    flags = 0
    if builder is Builder.TENSORRT and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = b.create_network(flags)
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors)) or "; ".join(
            log.errors
        )
        raise EngineError(f"{builder} cannot parse it: {errs[:300]}", onnx_path)
    config = b.create_builder_config()
    prof = b.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in profile:
            raise EngineError(f"no optimization profile for input {name!r}", onnx_path)
        lo, opt, hi = profile[name]
        prof.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(prof)
    cache = None
    if builder is Builder.TENSORRT and timing_cache is not None:
        data = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, ignore_mismatch=False)
    targets = tuple(RtxTarget(t) for t in rtx_targets)
    if not targets:
        raise EngineError("no TensorRT-RTX target architecture given", onnx_path)
    dropped = ""
    serialized = None
    while serialized is None:
        if builder is Builder.TENSORRT_RTX:
            config.num_compute_capabilities = len(targets)
            for k, cc in enumerate(targets):
                config.set_compute_capability(getattr(trt.ComputeCapability, cc.trt_name), k)
        serialized = b.build_serialized_network(network, config)
        turing = any("SM75" in e or "Turing" in e for e in log.errors)
        retry = len(targets) > 1 and RtxTarget.SM75 in targets
        if serialized is None and builder is Builder.TENSORRT_RTX and retry and turing:
            # Turing has no fp32 GEMM in TensorRT-RTX: fp32 matmuls (fp32 islands, fp32 engines) exclude it
            dropped = log.errors[-1][:200]
            targets = tuple(t for t in targets if t is not RtxTarget.SM75)
            log.errors.clear()
            continue
        break
    if serialized is None:
        raise EngineError(f"{builder} failed to build: {'; '.join(log.errors)[:300]}", onnx_path)
    atomic.write_bytes(engine_path, memoryview(serialized))
    cache_name = None
    if cache is not None:
        atomic.write_bytes(timing_cache, memoryview(cache.serialize()))
        cache_name = Path(timing_cache).name
    return EngineBuild(
        builder=builder.value,
        version=str(trt.__version__),
        target=target_of(builder, targets, dropped),
        seconds=round(time.perf_counter() - t0, 2),
        timing_cache=cache_name,
    )
