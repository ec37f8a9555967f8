"""One local Ray cluster per test module (a start costs seconds): a fresh token in the environment (nothing
written to ~/.ray), its session folder under /tmp (Ray's socket paths must stay short), a logical GPU so that
actors ask for GPUs as on a real cluster, more logical CPUs than this machine's cores so that the staged
layout's five actors and the CPU tasks all find a slot."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CPUS = 8
GPUS = 1
OBJECT_STORE = 256 * 1024**2
# one token for every cluster this process starts: Ray's token loader keeps the first one it read
TOKEN = secrets.token_hex(32)


@contextmanager
def local_cluster() -> Iterator[str]:
    """Yields the cluster's address; the process stays connected (runs reuse the connection)."""
    import ray

    temp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
    try:
        with pytest.MonkeyPatch.context() as mp:
            # ray.init turns token mode on itself (and refreshes its config: a mode set here after
            # `import ray` would not reach it); the patch restores the variable afterwards
            mp.setenv("RAY_AUTH_MODE", "")
            mp.delenv("RAY_AUTH_MODE")
            mp.setenv("RAY_AUTH_TOKEN", TOKEN)
            mp.delenv("RAY_ADDRESS", raising=False)
            ctx = ray.init(
                address="local",
                num_cpus=CPUS,
                num_gpus=GPUS,
                object_store_memory=OBJECT_STORE,
                include_dashboard=False,
                log_to_driver=False,
                _temp_dir=temp,
            )
            try:
                yield ctx.address_info["gcs_address"]
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(temp, ignore_errors=True)
