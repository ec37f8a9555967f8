"""Events in ONNX Runtime's profile format (a JSON list), for tests of the scripts' profile parsers."""

from __future__ import annotations


def run_event(ts: int, dur: int) -> dict:
    """One ``InferenceSession.run``: the window its kernels fall in (microseconds)."""
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def kernel_event(op: str, ts: int, dur: int) -> dict:
    """One node's kernel time, as ONNX Runtime names it (``<node>_kernel_time``)."""
    return {"cat": "Node", "name": f"n{ts}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}
