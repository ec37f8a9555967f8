"""Runtime: runs the stages in sequence on TensorRT, ONNX Runtime or PyTorch within a memory budget.

Importing this package must not import torch (tested)."""


def __getattr__(name: str):
    # `from trt_inpaint.runtime import Inpainter` without importing anything heavy at package import
    if name == "Inpainter":
        from trt_inpaint.runtime.api import Inpainter

        return Inpainter
    if name == "InpaintOptions":
        from trt_inpaint.runtime.options import InpaintOptions

        return InpaintOptions
    if name == "WorkItem":
        from trt_inpaint.runtime.workitem import WorkItem

        return WorkItem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
