import pytest

from trt_inpaint.bench.timing import measure, summarize


def test_summarize_median_and_p90():
    st = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (st.n, st.p50, st.min, st.max, st.mean) == (5, 3.0, 1.0, 5.0, 3.0)
    assert st.p90 == pytest.approx(4.6)  # linear interpolation between 4 and 5
    assert st.samples == (5.0, 1.0, 3.0, 2.0, 4.0)


def test_summarize_round_trip_and_empty():
    st = summarize([0.25, 0.5])
    assert type(st).from_dict(st.to_dict()) == st
    with pytest.raises(ValueError):
        summarize([])


def test_measure_excludes_warmup_from_samples():
    calls = []
    st = measure(lambda: calls.append(1), warmup=3, runs=4)
    assert len(calls) == 7
    assert st.n == 4
    with pytest.raises(ValueError):
        measure(lambda: None, warmup=0, runs=0)
