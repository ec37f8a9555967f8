"""Export: ONNX (fp32 and mixed fp16) and TensorRT engines for every stage. ``spec`` is light; the rest
imports torch / onnx lazily."""
