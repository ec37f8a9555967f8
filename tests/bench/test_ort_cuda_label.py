"""The benchmark never reports a CPU run as ort-cuda: the row's sessions must really run on CUDA."""

from __future__ import annotations

import pytest

from trt_inpaint.bench.backends import BY_KEY, device_mismatch, unavailable_reason
from trt_inpaint.bench.worker import Job, run_job
from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.export.spec import Pipeline, Stage, pipeline_stages
from trt_inpaint.runtime.backends.onnxruntime import cuda_problem


def test_device_mismatch():
    cuda, cpu = BY_KEY["ort-cuda-fp16"], BY_KEY["ort-cpu-fp32"]
    assert "ran on CPUExecutionProvider, not CUDAExecutionProvider" in device_mismatch(
        cuda, ["CPUExecutionProvider"]
    )
    assert device_mismatch(cuda, ["CUDAExecutionProvider"]) is None
    assert device_mismatch(cpu, ["CPUExecutionProvider"]) is None
    assert "CUDAExecutionProvider" in device_mismatch(cpu, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert device_mismatch(BY_KEY["torch-fp32"], ["CPUExecutionProvider"]) is None  # not an ONNX Runtime row


def test_ort_cuda_row_on_a_machine_without_cuda(standin_engines):
    """Without CUDA the row is listed as unavailable with the reason, and a worker forced to run it measures
    nothing. With CUDA (the GPU check runs this file) it runs, on CUDA."""
    row = BY_KEY["ort-cuda-fp16"]
    stages = tuple(pipeline_stages(Pipeline.LAMA))
    job = Job(backend=row.key, engines=str(standin_engines), pipeline="lama", size=64, runs=0, warmup=0)
    problem = cuda_problem()
    assert unavailable_reason(row, standin_engines, stages) == problem
    if problem is None:  # pragma: no cover - GPU machine with onnxruntime-gpu
        assert run_job(job)["execution_providers"] == ["CUDAExecutionProvider"]
        return
    with pytest.raises(BackendUnavailable, match="ort-cuda"):
        run_job(job)


def test_cpu_row_records_its_provider(standin_engines):
    job = Job(
        backend="ort-cpu-fp32", engines=str(standin_engines), pipeline="lama", size=64, runs=0, warmup=0
    )
    result = run_job(job)
    assert result["execution_providers"] == ["CPUExecutionProvider"]
    assert result["pipeline_runs"][0]["stages"][0]["stage"] == Stage.LAMA.value
