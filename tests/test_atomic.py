"""trt_inpaint.atomic: a failed write or rename leaves the old file and no temporary file; concurrent writers
to one target never collide or leave a partial file; permissions as a plain open() would give."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trt_inpaint import atomic

SIZE = 1 << 20  # big enough that a write is not one syscall's worth of page cache copy


def _payload(k: int) -> bytes:
    return bytes([k]) * SIZE


def _is_whole_payload(data: bytes) -> bool:
    return len(data) == SIZE and data == data[:1] * SIZE


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_new_file_has_umask_mode_and_replaced_file_keeps_its_mode(tmp_path):
    old = os.umask(0o027)
    try:
        new = atomic.write_text(tmp_path / "a.json", "{}")
        assert new.read_text() == "{}" and stat.S_IMODE(new.stat().st_mode) == 0o640
        os.umask(0o022)
        assert stat.S_IMODE(atomic.write_bytes(tmp_path / "b.bin", b"x").stat().st_mode) == 0o644
        new.chmod(0o600)
        atomic.write_text(new, "[1]")
        assert new.read_text() == "[1]" and stat.S_IMODE(new.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert _names(tmp_path) == ["a.json", "b.bin"]


def test_temp_path_keeps_the_suffix_and_sits_beside_the_target(tmp_path):
    target = tmp_path / "lama.fp32.npy"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npy" and tmp.name.startswith(".lama.fp32.")
        assert tmp.is_file() and not target.exists()  # reserved, not yet the target
        import numpy as np

        np.save(tmp, np.arange(3))  # np.save appends .npy unless the name ends with it
    assert _names(tmp_path) == ["lama.fp32.npy"]


def test_data_source_raising_mid_write_keeps_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    class SourceBroke(Exception):
        pass

    with pytest.raises(SourceBroke), atomic.atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(_payload(1)[: SIZE // 2])
        f.flush()
        assert tmp.stat().st_size == SIZE // 2  # half written when the source fails
        raise SourceBroke
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["out.bin"]


def test_interrupt_mid_write_keeps_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["out.bin"]


FULL_DISK = """
import os, resource, signal, sys
from trt_inpaint import atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    atomic.write_bytes(sys.argv[1], b"n" * 100_000)
except OSError as e:
    print("OSError", e.errno)
"""


def test_disk_full_mid_write_keeps_old_file(tmp_path):
    """The kernel refuses the write past 4 KiB (RLIMIT_FSIZE, in a child process): a real failed write."""
    import errno

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(target)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["OSError", str(errno.EFBIG)]
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["out.bin"]


def test_failed_rename_onto_a_non_empty_folder_leaves_it_and_no_temp(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "inside.txt").write_text("kept")
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"new")
    with pytest.raises(OSError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert _names(tmp_path) == ["out"] and (target / "inside.txt").read_text() == "kept"


def test_missing_folder_is_an_os_error_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic.write_text(tmp_path / "no" / "x.json", "{}")
    assert _names(tmp_path) == []


def _hammer(target: str, k: int, rounds: int) -> None:
    for _ in range(rounds):
        atomic.write_bytes(target, _payload(k))


def _check_concurrent(target: Path, start_writers) -> None:
    """Writers run while this thread reads the target: every read is one whole payload."""
    target.write_bytes(_payload(0))
    bad: list[int] = []
    reads = 0
    stop = threading.Event()
    finish = start_writers()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            data = target.read_bytes()
            reads += 1
            if not _is_whole_payload(data):
                bad.append(len(data))

    t = threading.Thread(target=reader)
    t.start()
    try:
        finish()
    finally:
        stop.set()
        t.join()
    assert not bad, f"{len(bad)} partial reads of {reads}"
    assert reads > 0 and _is_whole_payload(target.read_bytes())
    assert _names(target.parent) == [target.name]


def test_threads_writing_one_target_never_collide(tmp_path):
    target = tmp_path / "report.json"
    errors: list[BaseException] = []

    def start():
        def run(k):
            try:
                _hammer(str(target), k, 25)
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(1, 7)]
        for th in threads:
            th.start()
        return lambda: [th.join() for th in threads]

    _check_concurrent(target, start)
    assert not errors, errors[:3]


def test_processes_writing_one_target_never_collide(tmp_path):
    target = tmp_path / "manifest.json"
    ctx = multiprocessing.get_context("fork")

    def start():
        procs = [ctx.Process(target=_hammer, args=(str(target), k, 15)) for k in range(1, 5)]
        for p in procs:
            p.start()

        def finish():
            for p in procs:
                p.join(120)
            assert [p.exitcode for p in procs] == [0] * len(procs)

        return finish

    _check_concurrent(target, start)


def _concurrently(n: int, rounds: int, fn) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for _ in range(rounds):
                fn(k)
        except BaseException as e:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def test_two_exports_writing_one_manifest_never_collide(tmp_path):
    """export-engines writes manifest.json after every stage: two runs on one folder must not trip over
    each other's temporary file (a fixed ``manifest.json.tmp`` did)."""
    from trt_inpaint.export.manifest import Manifest, read_manifest, write_manifest

    errors = _concurrently(4, 40, lambda k: write_manifest(tmp_path, Manifest(created=f"run {k}")))
    assert not errors, errors[:3]
    assert read_manifest(tmp_path).created.startswith("run ")
    assert _names(tmp_path) == ["manifest.json"]


def test_two_benchmarks_writing_one_report_never_collide(tmp_path):
    """inpaint-bench --render (or two runs with one --out) rewrites report.json and report.md."""
    import json

    from trt_inpaint.bench.report import write_report

    committed = Path(__file__).parent.parent / "benchmarks/reports/cpu-2core/report.json"
    report = json.loads(committed.read_text())
    errors = _concurrently(
        4, 10, lambda k: write_report({**report, "name": f"run {k}"}, tmp_path, plot=False)
    )
    assert not errors, errors[:3]
    assert json.loads((tmp_path / "report.json").read_text())["name"].startswith("run ")
    assert _names(tmp_path) == ["report.json", "report.md"]
