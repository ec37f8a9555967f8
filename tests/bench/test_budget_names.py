import pytest

from trt_inpaint.bench.budgets import resolve_budget
from trt_inpaint.export.spec import Stage

MIB = 1024**2
SIZES = {Stage.LAMA: 400 * MIB, Stage.MAT: 500 * MIB, Stage.COMBINER: 10 * MIB}


def test_named_budgets():
    assert resolve_budget("all", SIZES) is None
    assert resolve_budget("tight", SIZES) == int(500 * MIB * 1.05)  # the largest stage alone, plus 5 %
    assert resolve_budget("half", SIZES) == int(500 * MIB * 1.05)  # half the total is below the largest
    assert resolve_budget(
        "half", {Stage.LAMA: 300 * MIB, Stage.MAT: 300 * MIB, Stage.COMBINER: 300 * MIB}
    ) == (450 * MIB)
    assert resolve_budget("3GiB", SIZES) == 3 * 1024 * MIB


def test_a_bad_budget_is_a_value_error():
    with pytest.raises(ValueError, match="not a size"):
        resolve_budget("lots", SIZES)
