"""Training of the denoisers and the combiner, data preparation, LaMa-style masks and evaluation."""
