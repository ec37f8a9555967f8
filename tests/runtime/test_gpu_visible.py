"""CUDA device numbers matched to NVML devices by UUID, with CUDA_VISIBLE_DEVICES read as CUDA reads it.

The GPUs are described as data (this machine has no NVML); the parsing and matching are the real code.
"""

from __future__ import annotations

import pytest

from trt_inpaint.runtime import gpu
from trt_inpaint.runtime.gpu import GpuInfo, MigInstance, Visible, parse_visible_devices, visible_devices

A100 = GpuInfo(0, "GPU-1a2b3c4d-0000-1111-2222-333344445555", "NVIDIA A100-SXM4-80GB")
H100 = GpuInfo(1, "GPU-1a2f9999-aaaa-bbbb-cccc-ddddeeeeffff", "NVIDIA H100 80GB HBM3")
MIGS = (
    MigInstance("MIG-7c1e0000-1111-2222-3333-444455556666", 1, 0),
    MigInstance("MIG-8d2f0000-1111-2222-3333-444455556666", 2, 0),
)
H100_MIG = GpuInfo(1, "GPU-1a2f9999-aaaa-bbbb-cccc-ddddeeeeffff", "NVIDIA H100 80GB HBM3", MIGS)
TWIN = GpuInfo(1, "GPU-9e8d7c6b-0000-1111-2222-333344445555", "NVIDIA A100-SXM4-80GB")


def _v(g: GpuInfo) -> Visible:
    return Visible(g.uuid, g.uuid)


@pytest.mark.parametrize(
    "value, entries",
    [
        (None, None),  # unset: every device
        ("", ()),  # set but empty: none
        ("0,1", ("0", "1")),
        (" 1 , GPU-1a2f ", ("1", "GPU-1a2f")),
        ("MIG-GPU-1a2f9999/1/0", ("MIG-GPU-1a2f9999/1/0",)),
    ],
)
def test_parse(value, entries):
    assert parse_visible_devices(value) == entries


def test_unset_follows_nvml_order_when_cuda_order_is_known():
    assert visible_devices(None, [A100, TWIN], pci_order=False) == [_v(A100), _v(TWIN)]  # same model
    assert visible_devices(None, [A100, H100], pci_order=True) == [_v(A100), _v(H100)]
    # FASTEST_FIRST (CUDA's default) on different models: CUDA's order is not NVML's
    assert visible_devices(None, [A100, H100], pci_order=False) == [None, None]


def test_indices_reorder_and_stop_at_the_first_invalid_entry():
    assert visible_devices(("1", "0"), [A100, H100], pci_order=True) == [_v(H100), _v(A100)]
    assert visible_devices(("1", "7", "0"), [A100, H100], pci_order=True) == [_v(H100)]
    assert visible_devices(("-1",), [A100, H100], pci_order=True) == []
    assert visible_devices(("1",), [A100, H100], pci_order=False) == [None]  # exists, order unknown


def test_gpu_uuids_and_unique_prefixes():
    gpus = [A100, H100]
    assert visible_devices((H100.uuid,), gpus, pci_order=False) == [_v(H100)]
    assert visible_devices(("GPU-1a2f",), gpus, pci_order=False) == [_v(H100)]  # unique prefix
    assert visible_devices(("gpu-1A2B3C4D",), gpus, pci_order=False) == [_v(A100)]  # any case
    assert visible_devices(("GPU-1a2", "0"), gpus, pci_order=True) == []  # ambiguous: CUDA stops
    assert visible_devices(("GPU-ffff",), gpus, pci_order=True) == []


def test_mig_ids_new_and_legacy_form():
    gpus = [A100, H100_MIG]
    assert visible_devices((MIGS[1].uuid,), gpus, pci_order=True) == [Visible(MIGS[1].uuid, H100_MIG.uuid)]
    legacy = f"MIG-{H100_MIG.uuid}/1/0"
    assert visible_devices((legacy, "0"), gpus, pci_order=True) == [
        Visible(MIGS[0].uuid, H100_MIG.uuid),
        _v(A100),
    ]
    assert visible_devices((f"MIG-{H100_MIG.uuid}/3/0",), gpus, pci_order=True) == []  # no such instance
    assert visible_devices(("MIG-0000",), gpus, pci_order=True) == []


def test_real_nvml(monkeypatch):
    """Here (no driver): nothing is visible and every query says None. On a GPU machine (the GPU check runs
    this file): device 0 is an NVML GPU, found again through its UUID and through its index."""
    gpus = gpu.nvml_gpus()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if not gpus:
        assert (
            gpu.visible(0) is None and gpu.device_memory_used(0) is None and gpu.compute_capability(0) is None
        )
        assert "NVML" in gpu.gpu_problem() or "libnvidia-ml" in gpu.gpu_problem()
        return
    first = gpu.visible(0)
    assert first is not None and first.gpu_uuid in {g.uuid for g in gpus}
    assert gpu.device_memory_used(0) > 0 and gpu.compute_capability(0)[0] >= 7
    for value in (first.uuid, first.uuid[:12], str(next(g.index for g in gpus if g.uuid == first.gpu_uuid))):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        assert gpu.visible(0) == first, value
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu.visible(0) is None and "CUDA_VISIBLE_DEVICES" in gpu.gpu_problem()
