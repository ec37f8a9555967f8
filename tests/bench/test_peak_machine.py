from trt_inpaint.bench.machine import machine_info
from trt_inpaint.bench.peak import measure_peak


def test_peak_measures_numpy_onnxruntime_and_openvino():
    p = measure_peak(n=256, repeats=2, bf16=False)
    assert p.numpy_flops and p.numpy_flops > 1e8
    assert p.ort_flops and p.ort_flops > 1e8
    assert p.openvino_flops and p.openvino_flops > 1e8
    assert p.flops == max(p.numpy_flops, p.ort_flops, p.openvino_flops)
    assert p.note == ""


def test_machine_info_names_cpu_cores_and_versions():
    m = machine_info()
    assert m["cpu"] and m["logical_cores"] >= 1 and m["memory_total"] > 0
    assert {"python", "numpy", "onnxruntime"} <= set(m["versions"])
    assert isinstance(m["gpus"], list) and isinstance(m["cpu_features"], list)
