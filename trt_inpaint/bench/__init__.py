"""inpaint-bench: latency, throughput, memory and FLOP/s per stage and end to end, every backend side by side.

Measurement tools, not tests. The CLI (``cli.py``) runs each backend in its own worker process
(``worker.py``) so that resident-memory figures of one backend are not polluted by another.
"""
