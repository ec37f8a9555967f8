import sys

import numpy as np
import pytest

from trt_inpaint.bench.memory import RssSampler, hwm_bytes, reset_hwm, rss_bytes

MIB = 1024**2


def test_window_catches_a_short_allocation_between_samples():
    with RssSampler(interval=0.5) as sampler:  # samples far apart: the kernel's high-water mark must catch it
        w = sampler.window_start("alloc")
        a = np.ones(200 * MIB // 8)  # 200 MiB, touched
        del a
        w = sampler.window_end(w)
        sampler.mark("after", "swap-in")
    assert w.delta >= 150 * MIB
    assert w.peak_rss >= w.start_rss + 150 * MIB
    assert sampler.timeline and sampler.timeline[0][1] > 0
    assert [e.label for e in sampler.events] == ["after"]
    d = sampler.to_dict()
    assert d["events"][0]["kind"] == "swap-in" and len(d["timeline"]) >= 2


def test_window_without_allocation_is_small():
    with RssSampler(interval=0.01) as sampler:
        w = sampler.window_end(sampler.window_start("idle"))
    assert w.delta < 20 * MIB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux only")
def test_hwm_reset():
    a = np.ones(100 * MIB // 8)
    del a
    assert hwm_bytes() >= rss_bytes()
    assert reset_hwm()
    assert hwm_bytes() < rss_bytes() + 50 * MIB
