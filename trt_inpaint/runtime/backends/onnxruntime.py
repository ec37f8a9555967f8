"""ONNX Runtime runners: CPU execution provider, and CUDA execution provider with IO binding.

Footprint: CUDA, the growth of device memory over load plus one warm-up run; CPU, the growth of resident
memory over load, never less than the model file's size (a re-load into memory the allocator kept shows
little growth though the weights are resident again).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trt_inpaint.errors import BackendUnavailable, EngineError
from trt_inpaint.export.spec import Role, Stage, random_feeds, spec
from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.backends.base import Backend, Runner


def import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailable(f"onnxruntime is not installed ({e})") from e
    return onnxruntime


def cuda_problem() -> str | None:
    """None when the CUDA execution provider can run here, else why not."""
    try:
        ort = import_ort()
    except BackendUnavailable as e:
        return str(e)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return gpu.gpu_problem()


def model_bytes(path: Path) -> int:
    """The model file plus external-data files beside it (``<name>.data`` / ``<name>_data``)."""
    total = path.stat().st_size if path.exists() else 0
    for extra in (path.with_name(path.name + ".data"), path.with_name(path.name + "_data")):
        if extra.exists():
            total += extra.stat().st_size
    return total


class OrtRunner(Runner):
    """One stage as an ONNX Runtime session."""

    def __init__(
        self,
        stage: Stage,
        path: str | Path,
        *,
        device: str = "cpu",
        device_id: int = 0,
        threads: int | None = None,
        gpu_mem_limit: int | None = None,
    ):
        super().__init__(Stage(stage).value)
        self.stage = Stage(stage)
        self.path = Path(path)
        self.device = device
        self.device_id = device_id
        self.threads = threads
        self.gpu_mem_limit = gpu_mem_limit
        self.backend = Backend.ORT_CUDA if device == "cuda" else Backend.ORT_CPU
        self._session = None

    def estimate_footprint(self) -> int:
        """Before loading: the weights' size."""
        return model_bytes(self.path)

    def _providers(self) -> list:
        if self.device != "cuda":
            return ["CPUExecutionProvider"]
        problem = cuda_problem()
        if problem:
            raise BackendUnavailable(f"ort-cuda: {problem}")
        opts = {"device_id": self.device_id, "arena_extend_strategy": "kSameAsRequested"}
        if self.gpu_mem_limit:
            opts["gpu_mem_limit"] = int(self.gpu_mem_limit)
        return [("CUDAExecutionProvider", opts), "CPUExecutionProvider"]

    def _load(self) -> None:
        ort = import_ort()
        if not self.path.is_file():
            raise EngineError("ONNX model not found", self.path)
        providers = self._providers()
        before = gpu.device_memory_used(self.device_id) if self.device == "cuda" else gpu.process_rss()
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if self.threads:
            so.intra_op_num_threads = self.threads
        try:
            session = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            first = first.replace(f"from {self.path} ", "").replace(str(self.path), "the file")
            raise EngineError(
                f"cannot load the ONNX model (corrupt or not ONNX): {first[:300]}", self.path
            ) from e
        self._check_io(session)
        self._session = session
        if self.device == "cuda":
            self._run(self._warmup_feeds())
            after = gpu.device_memory_used(self.device_id)
            self.footprint = max(0, (after or 0) - (before or 0))
        else:
            self.footprint = max(gpu.process_rss() - before, model_bytes(self.path))

    def _check_io(self, session) -> None:
        s = spec(self.stage)
        got_in = {i.name for i in session.get_inputs()}
        got_out = {o.name for o in session.get_outputs()}
        if got_in != set(s.input_names) or not set(s.output_names) <= got_out:
            raise EngineError(
                f"model inputs {sorted(got_in)} / outputs {sorted(got_out)} do not match stage {s.name} "
                f"({list(s.input_names)} -> {list(s.output_names)}): rebuild the engines",
                self.path,
            )

    def _warmup_feeds(self) -> dict[str, np.ndarray]:
        s = spec(self.stage)
        side = s.fixed_size or s.opt_size
        feeds = random_feeds(self.stage, 1, 0)
        for t in s.inputs:
            if t.role is not Role.NOISE:
                feeds[t.name] = np.zeros(t.concrete(1, side, side), np.float32)
        return feeds

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(spec(self.stage).output_names)
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        if self.device != "cuda":
            return dict(zip(names, self._session.run(names, feeds), strict=True))
        ort = import_ort()
        binding = self._session.io_binding()
        for name, arr in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", self.device_id))
        for name in names:
            binding.bind_output(name, "cuda", self.device_id)
        self._session.run_with_iobinding(binding)
        return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))

    def _unload(self) -> None:
        self._session = None
