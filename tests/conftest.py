"""Suite-wide hooks: GPU-only tests.

A test that can only run on an NVIDIA GPU carries ``@pytest.mark.gpu``. Where no GPU is visible (NVML, as
the runtime asks) each such test is skipped with the reason, and the terminal summary counts them
("GPU-only tests: N not run here (...)"), so a CPU-only CI run says what it did not check. Nothing else is
skipped: every module of the dev install is required, and a missing one fails.
"""

from __future__ import annotations

import pytest

_GPU = pytest.StashKey[dict]()


def _gpu_problem() -> str | None:
    from trt_inpaint.runtime.gpu import gpu_problem

    return gpu_problem()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("gpu") is not None]
    problem = _gpu_problem() if marked else None
    config.stash[_GPU] = {"count": len(marked), "problem": problem}
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"GPU-only test: {problem}")
    for item in marked:
        item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    info = config.stash.get(_GPU, None)
    if not info or not info["count"]:
        return
    n = info["count"]
    if info["problem"] is None:
        terminalreporter.write_line(f"GPU-only tests: {n} selected, run on this machine's GPU")
    else:
        terminalreporter.write_line(f"GPU-only tests: {n} not run here ({info['problem']})")
