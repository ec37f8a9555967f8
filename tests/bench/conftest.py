"""Fixtures for the benchmark tests: an engines folder of small ONNX stand-ins (no torch needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.standins import BENCH_WIDTHS, write_standins


@pytest.fixture(scope="session")
def standin_engines(tmp_path_factory) -> Path:
    """fp32 stand-ins of all five stages, and an "fp16" LaMa only (the fp32 graph under the fp16 name):
    the fp16 row cannot run the pipeline but can run LaMa's scaling."""
    folder = write_standins(tmp_path_factory.mktemp("bench-engines"), width=BENCH_WIDTHS)
    shutil.copy(folder / "lama.fp32.onnx", folder / "lama.fp16.onnx")
    return folder


@pytest.fixture(autouse=True)
def _flops_cache_in_tmp(tmp_path, monkeypatch):
    """FLOP counts are cached under XDG_CACHE_HOME: keep the tests' counts out of the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
