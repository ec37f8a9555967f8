"""Runtime: runs the stages in sequence on TensorRT, ONNX Runtime or PyTorch within a memory budget.

Importing this package must not import torch (tested)."""
