"""EngineDir reads the manifest through the exporter's typed reader: facts, damage, and parsing once."""

from __future__ import annotations

import json
import os

import pytest

from tests.standins import stage_record, write_records
from trt_inpaint.errors import EngineError
from trt_inpaint.export.manifest import Artefact, Manifest, read_manifest
from trt_inpaint.export.spec import MANIFEST_NAME, Precision, Stage
from trt_inpaint.runtime.engines import EngineDir, StageFacts

ENGINE_INFO = {
    "builder": "tensorrt-rtx",
    "version": "1.7.0",
    "target": {"compute_capabilities": ["8.6", "12.x"]},
}


def _folder(tmp_path):
    records = [
        stage_record(
            Stage.LAMA,
            source={"random_init": True, "seed": 5, "tiny": True},
            artefacts={
                "onnx_fp32": Artefact("lama.fp32.onnx", "ab", 1234, "k1"),
                "engine": Artefact("lama.fp16.engine", "cd", 99, "k2", info=ENGINE_INFO),
            },
        ),
        stage_record(Stage.MAT, source={"path": "/w/mat.pkl", "sha256": "ef", "random_init": False}),
    ]
    write_records(tmp_path, *records)
    return tmp_path


def test_facts_from_a_written_manifest(tmp_path):
    ed = EngineDir(_folder(tmp_path))
    lama = ed.stage_facts(Stage.LAMA)
    assert (lama.random_init_seed, lama.tiny, lama.checkpoints) == (5, True, {})
    assert (lama.trt_module, lama.trt_version, lama.compute_capabilities) == (
        "tensorrt_rtx",
        "1.7.0",
        ("8.6", "12.x"),
    )
    mat = ed.stage_facts(Stage.MAT)
    assert (
        mat.random_init_seed is None and mat.checkpoints == {"path": "/w/mat.pkl"} and mat.trt_module is None
    )
    assert ed.recorded_bytes(Stage.LAMA, "lama.fp32.onnx") == 1234
    assert ed.recorded_bytes(Stage.LAMA, "lama.fp16.engine") == 99
    assert ed.recorded_bytes(Stage.LAMA, "lama.fp16.onnx") is None
    assert ed.stage_facts(Stage.COMBINER) == StageFacts()  # no record: no facts
    assert ed.onnx(Stage.MAT, Precision.FP16) == tmp_path / "mat.fp16.onnx"


def test_no_manifest_means_no_facts(tmp_path):
    ed = EngineDir(tmp_path)
    assert ed.manifest() is None and ed.stage_facts(Stage.LAMA) == StageFacts()
    assert ed.recorded_bytes(Stage.LAMA, "lama.fp32.onnx") is None


def _good() -> dict:
    lama = stage_record(Stage.LAMA, artefacts={"onnx_fp32": Artefact("lama.fp32.onnx", "ab", 12, "k")})
    return Manifest(stages={"lama": lama}).to_dict()


def _set(keys: str, value):
    """A damage: the good manifest with the field at dotted ``keys`` set to ``value``."""

    def damage(m: dict) -> dict:
        *parents, last = keys.split(".")
        d = m
        for k in parents:
            d = d[k]
        d[last] = value
        return m

    return damage


DAMAGE = {
    "not json": "{not json",
    "a list": "[]",
    "another format": _set("format", 2),
    "stages a list": _set("stages", []),
    "record lacks a field": _set("stages.lama", {"stage": "lama"}),
    "unknown field": _set("stages.lama.sizes", 1),
    "bytes a string": _set("stages.lama.artefacts.onnx_fp32.bytes", "12"),
    "random_init a number": _set("stages.lama.random_init", 1),
    "source a list": _set("stages.lama.source", []),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_manifest_is_an_engine_error_naming_the_file(tmp_path, case):
    damage = DAMAGE[case]
    data = damage if isinstance(damage, str) else damage(_good())
    (tmp_path / MANIFEST_NAME).write_text(data if isinstance(data, str) else json.dumps(data))
    for read in (lambda: EngineDir(tmp_path).stage_facts(Stage.LAMA), lambda: read_manifest(tmp_path)):
        with pytest.raises(EngineError) as err:
            read()
        assert err.value.path == tmp_path / MANIFEST_NAME and "\n" not in str(err.value)
        assert "unreadable manifest" in str(err.value)


def test_the_undamaged_form_reads(tmp_path):
    """The base of the damage cases above is itself a good manifest (so each case fails for its damage)."""
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(_good()))
    assert EngineDir(tmp_path).recorded_bytes(Stage.LAMA, "lama.fp32.onnx") == 12


def test_manifest_is_parsed_once_and_again_when_replaced(tmp_path):
    path = _folder(tmp_path) / MANIFEST_NAME
    ed = EngineDir(tmp_path)
    assert ed.stage_facts(Stage.LAMA).random_init_seed == 5
    # the same file rewritten in place, same size and times: the parsed copy is kept (no re-read per call)
    st = path.stat()
    text = path.read_text()
    with open(path, "r+") as f:
        f.write(text.replace('"seed": 5', '"seed": 6'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ed.stage_facts(Stage.LAMA).random_init_seed == 5 and ed.manifest() is ed.manifest()
    # a rebuild replaces the file (new inode): read again
    write_records(tmp_path, stage_record(Stage.LAMA, source={"random_init": True, "seed": 7}))
    assert ed.stage_facts(Stage.LAMA).random_init_seed == 7
    path.unlink()
    assert ed.stage_facts(Stage.LAMA) == StageFacts()
