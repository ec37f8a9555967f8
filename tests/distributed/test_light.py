"""Ray is an extra: nothing imports it until a run asks for it, and without it --ray says what to install.
Fresh interpreters, no cluster."""

import subprocess
import sys

import pytest

from trt_inpaint.distributed.cli_args import add_ray_args, ray_options_from_args
from trt_inpaint.distributed.options import RayOptions
from trt_inpaint.errors import InputError

BLOCK_RAY = """
import importlib.abc, sys
class NoRay(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError("No module named 'ray' (blocked by the test)", name="ray")
sys.meta_path.insert(0, NoRay())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_runtime_and_the_clis_do_not_import_ray():
    proc = _run(
        "import sys\n"
        "import trt_inpaint.cli, trt_inpaint.runtime.cli, trt_inpaint.training.cli, trt_inpaint.distributed\n"
        "import trt_inpaint.distributed.cli, trt_inpaint.distributed.cluster, trt_inpaint.training.cache\n"
        "from trt_inpaint.distributed.cli_args import add_ray_args\n"
        "heavy = [m for m in ('ray', 'pyarrow', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_ray_flag_without_ray_installed_says_what_to_install(tmp_path):
    from trt_inpaint.samples import sample_pairs

    img, mask = sample_pairs()[0]
    argv = ["--images", str(img.parent), "--masks", str(mask.parent), "-o", str(tmp_path / "o"), "--ray"]
    proc = _run(BLOCK_RAY + f"from trt_inpaint.cli import main\nsys.exit(main({argv!r}))\n")
    err = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 5 and len(err) == 1, proc.stderr[-2000:]
    assert "Ray is not installed: pip install 'trt-inpaint[ray]'" in err[0]


def test_flag_defaults_are_the_options_defaults():
    import argparse

    p = argparse.ArgumentParser()
    add_ray_args(p)
    assert ray_options_from_args(p.parse_args([])) is None
    assert ray_options_from_args(p.parse_args(["--ray"])) == RayOptions()
    assert ray_options_from_args(p.parse_args(["--ray", "10.0.0.1:6379"])).joins


@pytest.mark.parametrize(
    "field, value, text",
    [("batch", 0, "batch: must be >= 1"), ("actors", 0, "actors: must be >= 1"),
     ("layout", "ring", "'ring' is not one of inpainter, staged"), ("timeout", 0, "timeout: must be > 0"),
     ("max_restarts", -1, "max_restarts: must be >= 0"), ("object_store_memory", "lots", "not a size"),
     ("actor_cpus", 0, "actor_cpus: must be > 0")],
)  # fmt: skip
def test_bad_options_are_input_errors(field, value, text):
    with pytest.raises(InputError, match=text):
        RayOptions(**{field: value})


def test_gpu_fractions_follow_footprints():
    from trt_inpaint.distributed.plan import gpu_fractions
    from trt_inpaint.export.spec import Stage

    gib = 1024**3
    fp = {Stage.LAMA: 8 * gib, Stage.MAT: 4 * gib, Stage.COMBINER: 1000}
    assert gpu_fractions(fp, 16 * gib) == {Stage.LAMA: 0.5, Stage.MAT: 0.25, Stage.COMBINER: 0.0001}
    # no budget: the footprints split one GPU, rounded down so that the shares fit on it together
    split = gpu_fractions({Stage.LAMA: 3, Stage.MAT: 1}, None)
    assert split == {Stage.LAMA: 0.75, Stage.MAT: 0.25}
    third = gpu_fractions({Stage.LAMA: 1, Stage.MAT: 2}, None)
    assert third == {Stage.LAMA: 0.3333, Stage.MAT: 0.6666} and sum(third.values()) <= 1
    tiny = gpu_fractions({Stage.LAMA: 10**9, Stage.MAT: 1, Stage.COMBINER: 1}, None)
    assert sum(tiny.values()) <= 1 and min(tiny.values()) == 0.0001


def test_rows_round_trip_and_a_foreign_pickle_is_refused(tmp_path):
    """Rows (a prepared 16-bit photo, a typed error) come back equal; bytes naming any other callable (here
    os.system) are refused before anything runs."""
    import os
    import pickle

    import numpy as np

    from trt_inpaint.distributed.rows import Row, pack, unpack
    from trt_inpaint.errors import InputError
    from trt_inpaint.runtime.options import InpaintOptions
    from trt_inpaint.runtime.prepare import prepare_pair
    from trt_inpaint.samples import sample_pairs

    image, mask = sample_pairs()[0]
    ok = Row(0, str(image), str(mask), str(tmp_path / "a.png"))
    ok.item = prepare_pair(image, mask, tmp_path / "a.png", InpaintOptions())
    bad = Row(1, "b.png", None, str(tmp_path / "b.png"))
    bad.fail(InputError("image is not an image", "b.png"))
    back = unpack(pack([ok, bad]))
    assert np.array_equal(back[0].item.image, ok.item.image) and back[0].item.source == ok.item.source
    assert type(back[1].error) is InputError and str(back[1].error) == str(bad.error)

    marker = tmp_path / "ran"

    class Foreign:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    data = np.empty(1, dtype=object)
    data[0] = pickle.dumps(Foreign())
    with pytest.raises(pickle.UnpicklingError, match="rows never hold"):
        unpack({"k": np.array([0]), "row": data})
    assert not marker.exists()
