"""trt-inpaint: a LaMa + MAT inpainting ensemble, exported to ONNX / TensorRT and run within a memory budget.

Importing the package is light: torch, tensorrt, tensorrt_rtx and onnxruntime are imported only by the
modules that need them.
"""

__version__ = "0.1.0"
