"""PyTorch reference models (imports torch). One model per file; checkpoint loading in ``checkpoints.py``."""
