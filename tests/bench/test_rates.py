"""Images/s, seconds per megapixel and the headline speed-up against inputs whose answers are known
beforehand: runners that take a set time per call, and a report with set latencies."""

from __future__ import annotations

import time

import numpy as np
import pytest

from trt_inpaint.bench.measure import bench_pipeline, bench_stage_sizes
from trt_inpaint.bench.memory import RssSampler
from trt_inpaint.bench.report import headline_ratio
from trt_inpaint.export.spec import PIPELINES, Pipeline, Role, Stage, spec
from trt_inpaint.runtime.backends.base import Backend, Runner

STAGE_S = 0.04  # seconds per call of every stage, whatever the batch
SLOW = 1.0  # timing upper bounds are loose: a loaded CI machine oversleeps, never undersleeps


class Sleeper(Runner):
    """A stage that takes ``seconds(feeds)`` per call and passes its first image input through."""

    backend = Backend.ORT_CPU

    def __init__(self, stage: Stage, seconds):
        super().__init__(stage.value)
        self.stage, self.seconds = stage, seconds

    def _load(self) -> None:
        self.footprint = 1

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.seconds(feeds))
        image = next(t.name for t in spec(self.stage).inputs if t.role is Role.IMAGE)
        return {spec(self.stage).output_names[0]: feeds[image]}

    def _unload(self) -> None:
        pass


def test_images_per_second_from_known_stage_times():
    """The ensemble's five stages at 40 ms each: a batch of 2 runs end to end in 0.2 s, so 10 images/s;
    each stage alone 2 / 0.04 = 50 images/s (upper bounds exact, lower bounds loose). MAT alone, batch 1:
    25 images/s."""
    with RssSampler() as sampler:
        r = bench_pipeline(lambda s: Sleeper(s, lambda f: STAGE_S), Pipeline.ENSEMBLE, 64, 2, 0, 3, sampler)
    assert r["batch"] == 2 and r["end_to_end"]["stats"]["n"] == 3 and len(r["stages"]) == 5
    n_stages = len(PIPELINES[Pipeline.ENSEMBLE])
    e2e = n_stages * STAGE_S
    assert 2 / (e2e + SLOW) < r["end_to_end"]["images_per_s"] <= 2 / e2e
    for s in r["stages"]:
        assert 2 / (STAGE_S + SLOW) < s["images_per_s"] <= 2 / STAGE_S
    with RssSampler() as sampler:
        r = bench_pipeline(lambda s: Sleeper(s, lambda f: STAGE_S), Pipeline.MAT, 512, 1, 0, 2, sampler)
    assert 1 / (STAGE_S + SLOW) < r["end_to_end"]["images_per_s"] <= 1 / STAGE_S


def test_seconds_per_megapixel_from_known_times():
    """A stage that takes 0.25 s per megapixel: s/MP is 0.25 at every size."""
    rate = 0.25

    def seconds(feeds: dict[str, np.ndarray]) -> float:
        h, w = feeds["image"].shape[-2:]
        return rate * h * w / 1e6

    with RssSampler() as sampler:
        rows = bench_stage_sizes(lambda s: Sleeper(s, seconds), Stage.LAMA, [256, 512], 0, 2, sampler)
    assert [r["size"] for r in rows] == [256, 512]
    for r in rows:
        mpix = r["size"] ** 2 / 1e6
        assert rate <= r["s_per_megapixel"] < rate + SLOW / mpix, r


def _report(torch_p50: float, ort_p50: float) -> dict:
    def row(key: str, p50: float) -> dict:
        run = {"batch": 1, "end_to_end": {"stats": {"p50": p50}}}
        label, numeric = key.rsplit("-", 1)  # as the real rows carry them (the headline names both rows)
        return {
            "key": key,
            "label": label,
            "numeric": numeric,
            "result": {"pipeline_runs": [{"batch": 2, "end_to_end": {"stats": {"p50": 9}}}, run]},
        }

    return {
        "backends": [row("torch-fp32", torch_p50), row("ort-cpu-fp32", ort_p50), row("tensorrt-fp16", 0.01)]
    }


def test_headline_speedup_from_set_latencies():
    """torch 0.30 s, ONNX Runtime 0.10 s at batch 1: 3.0x, goal (1.5x) met; 0.12 s vs 0.10 s: 1.2x, not."""
    h = headline_ratio(_report(0.30, 0.10))
    assert h["speedup"] == pytest.approx(3.0) and h["goal"] == 1.5 and h["met"] is True
    assert (h["torch_p50"], h["ort_p50"]) == (0.30, 0.10)
    h = headline_ratio(_report(0.12, 0.10))
    assert h["speedup"] == pytest.approx(1.2) and h["met"] is False
    report = _report(0.3, 0.1)
    del report["backends"][0]
    assert headline_ratio(report) is None  # no torch row: no headline
