"""``trt-inpaint --ray`` on a local Ray cluster (one per module) with stand-in stages and real photos
(8-bit JPEG, 16-bit PNG, RGBA PNG, grey PNG, an empty mask): the embedded run's bytes and summary, bad
files, a killed driver, killed actors, and bounds that stop a run instead of letting it hang."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cpu_facts import native_bf16_here
from tests.distributed.conftest import write_photos
from trt_inpaint.cli import main as trt_inpaint_main
from trt_inpaint.distributed import RayOptions, inpaint_files
from trt_inpaint.errors import BackendUnavailable
from trt_inpaint.runtime.cli import main as embedded_main
from trt_inpaint.runtime.options import InpaintOptions


def _args(images: Path, masks: Path, out: Path, engines: Path, *extra: str) -> list[str]:
    return ["--images", str(images), "--masks", str(masks), "-o", str(out), "--engines", str(engines),
            "--backend", "ort-cpu", "--no-progress", *extra]  # fmt: skip


def _pairs(images: Path, masks: Path, out: Path) -> list[tuple[Path, Path, Path]]:
    return [(p, masks / f"{p.stem}.png", out / p.name) for p in sorted(images.iterdir())]


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def _actor_pids(name: str) -> list[int]:
    """This test's actor processes (children of the cluster this process started), by class name."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any(name in part for part in p.cmdline()):
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def reference(photos, engines, tmp_path_factory) -> tuple[Path, dict]:
    """The embedded folder run's outputs and --json summary."""
    out = tmp_path_factory.mktemp("embedded") / "out"
    images, masks = photos
    code, summary = _json_run(embedded_main, _args(images, masks, out, engines, "--json"))
    assert code == 0
    return out, summary


def _json_run(main, argv) -> tuple[int, dict]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, json.loads(buf.getvalue())


@pytest.mark.parametrize("layout", ["inpainter", "staged"])
def test_same_bytes_and_summary_as_the_embedded_run(cluster, engines, photos, reference, tmp_path, layout):
    images, masks = photos
    ref_out, ref = reference
    out = tmp_path / "out"
    code, s = _json_run(
        trt_inpaint_main,
        _args(images, masks, out, engines, "--json", "--ray", "--ray-layout", layout, "--ray-batch", "2"),
    )
    assert code == 0
    _same_files(ref_out, out)
    assert (s["written"], s["unchanged"], s["failed"], s["skipped"]) == (5, 1, 0, 0)
    for key in ("images", "written", "unchanged", "skipped", "failed", "backend", "precision", "models",
                "budget_bytes", "loads"):  # fmt: skip
        assert s[key] == ref[key], key
    strip = [{**r, "output": Path(r["output"]).name} for r in s["results"]]
    assert strip == [{**r, "output": Path(r["output"]).name} for r in ref["results"]]
    assert s["ray"]["layout"] == layout and s["ray"]["images_per_s"] > 0
    if layout == "staged":
        pools = s["ray"]["pools"]
        assert list(pools) == ["lama", "lama_denoiser", "mat", "combiner", "final_denoiser"]
        fractions = [p["gpus"] for p in pools.values()]
        assert all(0 < f <= 1 for f in fractions) and sum(fractions) <= 1
        # each fraction is the stage's footprint over the budget, rounded up to 1/10000
        for name, p in pools.items():
            assert (
                p["gpus"] == max(1, -(-s["ray"]["footprints"][name] * 10_000 // s["budget_bytes"])) / 10_000
            )


def test_openvino_backend_on_ray_gives_the_embedded_bytes_and_precision(cluster, engines, photos, tmp_path):
    """The actors build the Inpainter from the same options: OpenVINO at this CPU's default precision."""
    images, masks = photos
    runs = {}
    for how, main, extra in (("embedded", embedded_main, ()), ("ray", trt_inpaint_main, ("--ray",))):
        argv = _args(images, masks, tmp_path / how, engines, "--json", "--backend", "openvino", *extra)
        code, runs[how] = _json_run(main, argv)
        assert code == 0, how
    _same_files(tmp_path / "embedded", tmp_path / "ray")
    assert runs["ray"]["backend"] == "openvino" and runs["ray"]["precision"] == runs["embedded"]["precision"]
    assert runs["ray"]["precision"] == ("bf16" if native_bf16_here() else "fp32")


def test_bad_files_reported_once_others_written_exit_1(
    cluster, engines, photos, tmp_path, capsys, monkeypatch
):
    """Relative paths: the workers get them made absolute, the report and the errors say them as given."""
    monkeypatch.chdir(tmp_path)
    images, masks = Path("images"), Path("masks")
    shutil.copytree(photos[0], images)
    shutil.copytree(photos[1], masks)
    (images / "broken.png").write_bytes(b"not a png")
    shutil.copy(next(masks.iterdir()), masks / "broken.png")
    shutil.copy(next(images.glob("*.jpg")), images / "orphan.jpg")  # no mask named orphan.*
    errors, summaries = {}, {}
    for how, main, extra in (("embedded", embedded_main, ()), ("ray", trt_inpaint_main, ("--ray",))):
        out = Path(how)
        code, s = _json_run(main, _args(images, masks, out, engines, "--json", *extra))
        assert code == 1 and (s["written"], s["unchanged"], s["failed"]) == (5, 1, 2), how
        assert all(not Path(r["image"]).is_absolute() for r in s["results"]), how
        summaries[how] = s["results"]
        err = capsys.readouterr().err
        errors[how] = sorted(line for line in err.splitlines() if line.startswith("trt-inpaint: error:"))
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in photos[0].iterdir()), how
    assert len(errors["ray"]) == 2 and errors["ray"] == errors["embedded"]
    assert "trt-inpaint: error: images/orphan.jpg: no mask found for this image" in errors["ray"]
    assert any(
        e.startswith("trt-inpaint: error: images/broken.png: image is not an image") for e in errors["ray"]
    )
    strip = [[{**r, "output": Path(r["output"]).name} for r in summaries[h]] for h in ("embedded", "ray")]
    assert strip[0] == strip[1]


def test_parquet_listing_on_ray_with_progress(cluster, engines, photos, reference, tmp_path, capsys):
    images, masks = photos
    rows = [
        {"image": str(i), "mask": str(m), "output": f"out/{o.name}"}
        for i, m, o in _pairs(images, masks, tmp_path)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "l.parquet")
    argv = ["--list", str(tmp_path / "l.parquet"), "--engines", str(engines), "--backend", "ort-cpu", "--ray"]
    assert trt_inpaint_main(argv) == 0
    _same_files(reference[0], tmp_path / "out")
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    last = [line for line in bar if line.startswith("files: 100%")][-1]
    assert "6/6" in last and "img/s" in last and "failed=0" in last and "skipped=0" in last, last


def _embedded_outputs(images, masks, engines, out) -> Path:
    assert embedded_main(_args(images, masks, out, engines)) == 0
    return out


@pytest.fixture(scope="module")
def many(tmp_path_factory, engines):
    """24 photos (4 copies of the set) and the embedded run's outputs of them."""
    root = tmp_path_factory.mktemp("many")
    images, masks = write_photos(root, copies=4)
    return images, masks, _embedded_outputs(images, masks, engines, root / "embedded")


def _kill_when_written(out: Path, name: str, kills: list, times: int = 1) -> threading.Thread:
    """Kill the actor named ``name`` (SIGKILL) once an output is on disk, ``times`` times (each after a new
    actor process appears); ``kills`` gets the number of outputs present at each kill."""

    def run() -> None:
        deadline = time.monotonic() + 120
        seen: set[int] = set()
        while len(kills) < times and time.monotonic() < deadline:
            pids = [p for p in _actor_pids(name) if p not in seen]
            written = len(list(out.glob("*"))) if out.is_dir() else 0
            if pids and written >= 1 + 2 * len(kills):
                seen.update(pids)
                os.kill(pids[0], signal.SIGKILL)
                kills.append(written)
            time.sleep(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _run_with_one_kill(engines, many, out: Path, max_restarts: int, kills: list):
    """The run over ``many`` with its actor killed once mid-run (``kills``: outputs present at the kill)."""
    images, masks, _ = many
    out.mkdir()
    killer = _kill_when_written(out, "InpaintActor", kills)
    try:
        opts = InpaintOptions(engines=engines, backend="ort-cpu")
        ray_opts = RayOptions(batch=1, max_restarts=max_restarts, timeout=120)
        return inpaint_files(_pairs(images, masks, out), opts, ray_opts)
    finally:
        killer.join(timeout=5)


def test_killed_actor_is_restarted_and_the_run_completes(cluster, engines, many, tmp_path):
    kills: list[int] = []
    run = _run_with_one_kill(engines, many, tmp_path / "out", 2, kills)
    assert len(kills) == 1 and kills[0] < 24, "the actor was not killed mid-run"
    assert [r.status for r in run.report.results].count("failed") == 0
    _same_files(many[2], tmp_path / "out")
    assert run.stats["ray"]["actor_starts"] >= 2, "no second actor process ran batches"


def test_actors_that_keep_dying_stop_the_run_with_one_line(cluster, engines, many, tmp_path):
    kills: list[int] = []
    t0 = time.monotonic()
    with pytest.raises(
        BackendUnavailable, match=r"an actor died after 0 restart\(s\) \(--ray-max-restarts\)"
    ) as e:
        _run_with_one_kill(engines, many, tmp_path / "out", 0, kills)
    assert len(kills) == 1 and "\n" not in str(e.value) and time.monotonic() - t0 < 90


def test_actors_that_cannot_start_stop_the_run_within_the_timeout(cluster, engines, photos, tmp_path, capsys):
    """A GPU type the cluster lacks (engines pinned to another GPU): a bounded wait, then one line, exit 5."""
    images, masks = photos
    t0 = time.monotonic()
    argv = _args(images, masks, tmp_path / "o", engines, "--ray", "--ray-accelerator-type", "H100")
    code = trt_inpaint_main([*argv, "--ray-timeout", "4"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 5 and len(err) == 1, err
    assert "the actors did not start within 4 s" in err[0] and "a GPU of type H100" in err[0]
    assert time.monotonic() - t0 < 60 and not list((tmp_path / "o").iterdir())


def test_engine_error_in_the_actors_exits_as_the_embedded_run(cluster, photos, tmp_path, capsys):
    images, masks = photos
    codes = []
    for main, extra in ((embedded_main, ()), (trt_inpaint_main, ("--ray",))):
        codes.append(main(_args(images, masks, tmp_path / "o", tmp_path / "no-engines", *extra)))
        err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(err) == 1 and "export-engines --out" in err[0], err
    assert codes == [4, 4]


def _env_without(*names: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, **extra}


def test_killed_driver_rerun_writes_only_the_missing_outputs(cluster, engines, many, tmp_path):
    """The CLI (``--ray``, auto) joins the cluster RAY_ADDRESS names (token from the environment,
    RAY_AUTH_MODE unset: the join turns token mode on); SIGKILL it mid-run, run again: only the missing
    outputs are written."""
    images, masks, ref = many
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "trt_inpaint.cli", *_args(images, masks, out, engines), "--ray",
            "--ray-batch", "1"]  # fmt: skip
    env = _env_without("RAY_AUTH_MODE", RAY_ADDRESS=cluster)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len([p for p in out.iterdir() if not p.name.startswith(".")]) >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (
            f"the run ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert f"Ray: joined the cluster at {cluster}" in proc.stderr.read().decode()
    visible = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    assert 4 <= len(visible) < 24
    for p in visible:  # complete files only: each is the embedded run's output
        assert p.read_bytes() == (ref / p.name).read_bytes(), p.name
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in visible}
    code, s = _json_run(trt_inpaint_main, [*argv[3:], "--json"])
    assert code == 0 and s["skipped"] == len(before) and s["written"] + s["unchanged"] == 24 - len(before)
    for name, st in before.items():
        p = out / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == st, f"{name} was written again"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert all(".tmp" in n for n in leftovers), (
        leftovers
    )  # only the atomic writer's temporaries, if killed mid-write
    for p in leftovers:
        (out / p).unlink()
    _same_files(ref, out)


def test_joining_a_token_cluster_without_its_token_says_where_to_put_it(cluster, tmp_path):
    env = _env_without("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", RAY_AUTH_MODE="token", HOME=str(tmp_path))
    argv = [sys.executable, "-m", "trt_inpaint.cli", "--images", str(tmp_path), "--masks", str(tmp_path),
            "-o", str(tmp_path / "o"), "--ray", cluster]  # fmt: skip
    (tmp_path / "a.png").write_bytes(b"x")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    err = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 5 and len(err) == 1, proc.stderr[-2000:]
    assert f"the Ray cluster at {cluster} wants its token: set RAY_AUTH_TOKEN" in err[0]
